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
log=$(mktemp)
ctest --test-dir build --output-on-failure -j"$(nproc)" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# A skipped test is not a passing test: fail the run if any was skipped.
if grep -q '\*\*\*Skipped\|\[  SKIPPED \]' "$log"; then
  echo "test: some tests were skipped (see above); that is a failure here" >&2
  status=1
fi
rm -f "$log"
exit "$status"
