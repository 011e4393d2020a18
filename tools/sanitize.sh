#!/usr/bin/env bash
# The checks CI runs after the test suite:
#   1. the whole suite built with AddressSanitizer + UndefinedBehaviorSanitizer
#      (clang; the same tree builds the libFuzzer targets, so the library is
#      compiled once for both);
#   2. the concurrency tests built with ThreadSanitizer (sessions on threads,
#      the pread backend, the loader's asynchronous reads);
#   3. each libFuzzer target for FUZZ_RUNS executions from tests/fuzz/corpus.
# Usage: bash tools/sanitize.sh [asan|tsan|fuzz ...]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${LLMFLASH_SHARED_DIR:-../shared}
shared=$(cd "$shared" && pwd)
jobs=$(nproc)
fuzz_runs=${FUZZ_RUNS:-20000}
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(asan tsan fuzz)
# Reports need files and lines, not full debug info: line tables only build
# the sanitizer trees ~15% faster (measured on the library and golden_test).
line_tables="-O2 -g1 -DNDEBUG"  # gcc and clang: functions and line tables

source tools/packages.sh
need_packages sanitize clang libclang-rt-14-dev

# ctest, failing on skipped tests as tools/test.sh does.
run_ctest() {
  local log
  log=$(mktemp)
  ctest "$@" 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  if grep -q '\*\*\*Skipped\|\[  SKIPPED \]' "$log"; then
    echo "sanitize: some tests were skipped; that is a failure here" >&2
    status=1
  fi
  rm -f "$log"
  return "$status"
}

for step in "${steps[@]}"; do
  case "$step" in
    asan)
      echo "== ASan + UBSan: whole suite"
      CXX=clang++ CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLMFLASH_SANITIZE=ON \
        -DLLMFLASH_FUZZ=ON -DLLMFLASH_BUILD_BENCHMARKS=OFF -DLLMFLASH_SHARED_DIR="$shared" \
        -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$line_tables" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$line_tables" >/dev/null
      cmake --build build-asan -j"$jobs"
      export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
      run_ctest --test-dir build-asan --output-on-failure -j"$jobs"
      ;;
    tsan)
      echo "== TSan: concurrency tests"
      cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLMFLASH_TSAN=ON \
        -DLLMFLASH_BUILD_BENCHMARKS=OFF -DLLMFLASH_SHARED_DIR="$shared" \
        -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$line_tables" -DCMAKE_C_FLAGS_RELWITHDEBINFO="$line_tables" >/dev/null
      cmake --build build-tsan -j"$jobs" --target reliability_test io_test util_test cache_test
      export TSAN_OPTIONS=halt_on_error=1
      # Sessions on threads, the pread backend's threads, and the loader's
      # reads on the I/O thread while the caller computes.
      run_ctest --test-dir build-tsan --output-on-failure -R 'Concurrency|pread|NeuronLoader' -j"$jobs"
      ;;
    fuzz)
      echo "== libFuzzer: $fuzz_runs executions per target"
      # The asan step's tree has the fuzzers; alone, this step builds its own.
      fuzz_dir=build-asan
      if [ ! -x build-asan/tests/fuzz/fuzz_gguf ]; then
        fuzz_dir=build-fuzz
        CXX=clang++ CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
          -DLLMFLASH_FUZZ=ON >/dev/null
        cmake --build build-fuzz -j"$jobs"
      fi
      for target in manifest llama2c_tokenizer llama2c_header safetensors_header hf_tokenizer chat_template gguf; do
        work=$(mktemp -d)
        cp tests/fuzz/corpus/"$target"/* "$work"/
        ./"$fuzz_dir"/tests/fuzz/fuzz_"$target" -runs="$fuzz_runs" -max_len=8192 -timeout=10 \
          -rss_limit_mb=2048 "$work" 2>&1 | tail -n 2
        rm -rf "$work"
      done
      ;;
    *) echo "sanitize: unknown step $step (asan, tsan, fuzz)" >&2; exit 2 ;;
  esac
done
echo "sanitize: all checks passed"
