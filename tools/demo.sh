#!/usr/bin/env bash
# The newcomer's demo: set up and build, convert stories260K into the flash
# layout, then generate with the FFN read from flash under a DRAM budget that
# holds less of the FFN than one token needs, with per-token stats.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${LLMFLASH_SHARED_DIR:-../shared}
src="$shared/models/stories260K"
[ -f "$src/stories260K.bin" ] || { echo "demo: $src/stories260K.bin is missing" >&2; exit 1; }

bash tools/setup.sh
rm -rf build/stories260K.llmflash
./build/llmflash convert --input "$src/stories260K.bin" --tokenizer "$src/tok512.bin" \
    --output build/stories260K.llmflash
./build/llmflash inspect --model build/stories260K.llmflash --dram-budget 150%
./build/llmflash generate --model build/stories260K.llmflash --prompt "Once upon a time" \
    --max-tokens 64 --dram-budget 150% --stats
