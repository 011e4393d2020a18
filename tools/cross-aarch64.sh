#!/usr/bin/env bash
# Cross-builds llmflash and its tests for aarch64 (Debian's
# g++-aarch64-linux-gnu and the arm64 multiarch -dev packages) and runs the
# unit and golden tests under qemu-user, the NEON kernels included. Installs
# what is missing when run as root.
#
# Not run under emulation: the integration tests that start the CLI as a
# child process (qemu-user without binfmt_misc cannot exec an aarch64 child)
# or measure time (emulation is 10-50x slower); they run natively in
# tools/test.sh. qemu-user does not emulate io_uring (io_uring_setup gives
# ENOSYS): the tests of the io_uring backend itself, the calibration (which
# measures through it) and the golden test that checks `auto` picked it run
# natively only; every other test here runs on the pread fallback, as on a
# kernel without io_uring.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${LLMFLASH_SHARED_DIR:-../shared}
shared=$(cd "$shared" && pwd)

source tools/packages.sh
need_packages cross-aarch64 g++-aarch64-linux-gnu qemu-user-static cmake make libeigen3-dev nlohmann-json3-dev \
  libstdc++6:arm64 liburing-dev:arm64 libpcre2-dev:arm64 libutf8proc-dev:arm64 libgtest-dev:arm64 libgmock-dev:arm64

build=build-aarch64
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DLLMFLASH_SHARED_DIR="$shared" -DLLMFLASH_BUILD_BENCHMARKS=OFF >/dev/null
# Only what the emulated run needs: the test binaries labelled unit or golden
# (read from tests/CMakeLists.txt, so a new one is built and run without
# listing it here). The CLI, the benchmarks and the integration binaries are
# not built: they would cost minutes of CI and never run under qemu.
mapfile -t targets < <(sed -nE 's/^[[:space:]]*llmflash_test\(([A-Za-z0-9_]+) (unit|golden)[ )].*/\1/p' tests/CMakeLists.txt)
if [ ${#targets[@]} -eq 0 ]; then
  echo "cross-aarch64: found no unit or golden test binaries in tests/CMakeLists.txt" >&2
  exit 1
fi
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
log=$(mktemp)
needs_uring='uring|Uring|Calibrate\.MeasuresARealFile|Window\.ReadsStopOnceTheWindowHoldsTheFfn'
ctest --test-dir "$build" -L 'unit|golden' -E "$needs_uring" --output-on-failure -j"$(nproc)" --timeout 900 \
  2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# The NEON path must have run: a build that silently fell back to the
# portable loops would pass everything above.
if ! grep -q 'neon' "$log"; then
  echo "cross-aarch64: no NEON kernel test ran" >&2
  status=1
fi
if grep -q '\*\*\*Skipped\|\[  SKIPPED \]' "$log"; then
  echo "cross-aarch64: some tests were skipped (see above); that is a failure here" >&2
  status=1
fi
rm -f "$log"
exit "$status"
