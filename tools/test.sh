#!/usr/bin/env bash
# Builds llmflash (tools/setup.sh) and runs the whole test suite with CTest.
# Fails when ../shared/models/stories260K is missing, so no test that needs it
# can be skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${LLMFLASH_SHARED_DIR:-../shared}
if [ ! -f "$shared/models/stories260K/stories260K.bin" ]; then
  echo "test: $shared/models/stories260K is missing; the suite needs it" >&2
  exit 1
fi
bash tools/setup.sh -DLLMFLASH_SHARED_DIR="$(cd "$shared" && pwd)"
ctest --test-dir build --output-on-failure -j"$(nproc)"
