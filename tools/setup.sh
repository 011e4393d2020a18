#!/usr/bin/env bash
# Installs what llmflash needs from Debian packages (when run as root and
# something is missing) and builds it in ./build (Release).
set -euo pipefail
cd "$(dirname "$0")/.."

source tools/packages.sh
need_packages setup cmake make g++ liburing-dev libeigen3-dev nlohmann-json3-dev libgtest-dev libgmock-dev \
  libpcre2-dev libutf8proc-dev \
  libbenchmark-dev

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)"
