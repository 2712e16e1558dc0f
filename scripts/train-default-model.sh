#!/usr/bin/env bash
# Retrains the embedded default model from scratch on a CPU: data → patches → tokenizer (VQVAE) →
# SR transformer + refiner → models/varsr-studio-small.safetensors. Every stage resumes from its
# checkpoint in work-data/ckpt/ when run again; logs go to work-data/logs/.
#
# Steps can be changed with environment variables (defaults: the published run):
#   TOKENIZER_STEPS, TOKENIZER_STAGE1, TOKENIZER_BATCH, TRANSFORMER_STEPS, TRANSFORMER_BATCH
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=work-data
mkdir -p "$WORK/ckpt" "$WORK/logs"

[ -d "$WORK/photos" ] && [ -n "$(ls -A "$WORK/photos" 2>/dev/null)" ] || scripts/fetch-training-data.sh "$WORK"

cargo build --release
BIN=target/release/varsr

[ -f "$WORK/patches.bin" ] || "$BIN" train patches

"$BIN" train tokenizer \
    --steps "${TOKENIZER_STEPS:-800}" --stage1-steps "${TOKENIZER_STAGE1:-750}" \
    --batch "${TOKENIZER_BATCH:-8}" --lr 3e-4 --continuous-prob 0.5 --save-every 20 --log-every 10 \
    2>&1 | tee -a "$WORK/logs/tokenizer.log"

"$BIN" train transformer \
    --steps "${TRANSFORMER_STEPS:-1500}" --batch "${TRANSFORMER_BATCH:-4}" --save-every 20 --log-every 5 \
    2>&1 | tee -a "$WORK/logs/transformer.log"

"$BIN" train export
echo "done: models/varsr-studio-small.safetensors; evaluate with: $BIN eval /path/to/Set5 --cfg 0,2,6,12"
