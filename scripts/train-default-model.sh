#!/usr/bin/env bash
# Retrains the embedded default model from scratch on a CPU: data → patches → tokenizer (VQVAE) →
# SR transformer + refiner → models/varsr-studio-small.safetensors. Every stage resumes from its
# checkpoint in work-data/ckpt/ when run again; logs go to work-data/logs/.
#
# Steps can be changed with environment variables (defaults: the published run):
#   TOKENIZER_STEPS, TOKENIZER_STAGE1, TOKENIZER_BATCH, DECODER_STEPS, DECODER_STAGE1, TRANSFORMER_STEPS, TRANSFORMER_BATCH
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=work-data
mkdir -p "$WORK/ckpt" "$WORK/logs"

[ -d "$WORK/photos" ] && [ -n "$(ls -A "$WORK/photos" 2>/dev/null)" ] || scripts/fetch-training-data.sh "$WORK"

cargo build --release
BIN=target/release/varsr

[ -f "$WORK/patches.bin" ] || "$BIN" train patches

# 1. The whole tokenizer (encoder, codebook, φ, decoder).
"$BIN" train tokenizer \
    --steps "${TOKENIZER_STEPS:-450}" --stage1-steps "${TOKENIZER_STAGE1:-100}" \
    --batch "${TOKENIZER_BATCH:-8}" --lr 6e-4 --continuous-prob 0.5 --save-every 20 --log-every 10 \
    2>&1 | tee -a "$WORK/logs/tokenizer.log"

# 2. The transformer + refiner on the frozen tokens and, at the same time on the other core, the
#    decoder alone (candle's CPU training uses a second thread poorly, so two single-threaded runs
#    get nearly twice the work done).
[ -f "$WORK/ckpt/tokenizer-decoder.safetensors" ] ||
    cp "$WORK/ckpt/tokenizer.safetensors" "$WORK/ckpt/tokenizer-decoder.safetensors"
RAYON_NUM_THREADS=1 "$BIN" train tokenizer --decoder-only \
    --checkpoint "$WORK/ckpt/tokenizer-decoder.safetensors" \
    --steps "${DECODER_STEPS:-2000}" --stage1-steps "${DECODER_STAGE1:-450}" \
    --batch 8 --lr 5e-4 --continuous-prob 0.5 --save-every 20 --log-every 10 \
    >>"$WORK/logs/decoder.log" 2>&1 &
decoder=$!
RAYON_NUM_THREADS=1 "$BIN" train transformer \
    --steps "${TRANSFORMER_STEPS:-1600}" --batch "${TRANSFORMER_BATCH:-8}" --lr 1e-3 --warmup 50 \
    --save-every 25 --log-every 5 \
    2>&1 | tee -a "$WORK/logs/transformer.log"
wait "$decoder"

# 3. The file the app embeds (tokens from the frozen tokenizer, the fine-tuned decoder).
"$BIN" train export --tokenizer "$WORK/ckpt/tokenizer-decoder.safetensors"
echo "done: models/varsr-studio-small.safetensors; evaluate with: $BIN eval /path/to/Set5 --cfg 0,2,6,12"
