#!/usr/bin/env bash
# The shapes demo models from scratch, in one command (about 3 hours on a
# 2-core CPU, measured 2026-12-03: base 110 minutes, upsampler 45, CLIP
# guide 6, inpainting 26):
#   bash tools/train_shapes.sh [NUM_PROCESSES [OUT]]
# 1. the datasets: 20,000 training scenes and 64 held-out ones (another seed);
# 2. stage 1, glide_shapes-32.py: 4000 steps from scratch;
# 3. its EMA weights published as float16 (work_dirs/glide_shapes-32/
#    stage1.safetensors), the file stage 2 starts from;
# 4. stage 2, glide_shapes-32_stage2.py: 4000 more steps;
# 5. its EMA weights published as float16 (work_dirs/glide_shapes-32/
#    base.safetensors), the base model;
# 6. the 64 px datasets and the 32->64 upsampler, glide_shapes-32-64.py
#    (the base model loaded and left untouched);
# 7. the noised CLIP guide, glide_shapes-32-clip.py (one process of 64
#    images per step; the base model loaded and left untouched);
# 8. the EMA weights of all three (base, upsampler, CLIP guide) published
#    as float16 to OUT (default work_dirs/glide_shapes-32.safetensors; the
#    shipped file is checkpoints/glide_shapes-32.safetensors);
# 9. the inpainting model, glide_shapes-32-inpaint.py (fine-tuned from the
#    base model), published beside it (OUT with -inpaint before the
#    extension; shipped: checkpoints/glide_shapes-32-inpaint.safetensors).
# NUM_PROCESSES (default 2) gloo DDP processes share the 32 images of a step.
# Each stage validates on the held-out prompts with the pixel judge, so the
# training logs hold the curve of caption accuracy.
set -euo pipefail
NPROC=${1:-2}
OUT=${2:-work_dirs/glide_shapes-32.safetensors}
OUT_INPAINT="${OUT%.safetensors}-inpaint.safetensors"
if ! [[ "$NPROC" =~ ^[0-9]+$ ]] || (( NPROC < 1 || 32 % NPROC )); then
  echo "train_shapes.sh: NUM_PROCESSES must be 1, 2, 4, 8, 16 or 32 (a" \
       "divisor of the 32 images of a step), got '$NPROC'" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source tools/dist_env.sh
CONFIGS=projects/glide/configs
BATCH=$(( 32 / NPROC ))

# datasets DIR SIZE: 20,000 training scenes in DIR, 64 held-out in DIR_val.
datasets() {
    "$PYTHON" tools/make_shapes_dataset.py --out "data/$1" --num 20000 \
        --size "$2" --quiet
    "$PYTHON" tools/make_shapes_dataset.py --out "data/$1_val" --num 64 \
        --seed 12345 --size "$2" --quiet
}

datasets shapes 32
bash tools/dist_train.sh "$CONFIGS/glide_shapes-32.py" "$NPROC" \
    --cfg-options train_dataloader.batch_size="$BATCH"
"$PYTHON" tools/publish_checkpoint.py work_dirs/glide_shapes-32/iter_4000.pth \
    work_dirs/glide_shapes-32/stage1.safetensors --dtype float16
bash tools/dist_train.sh "$CONFIGS/glide_shapes-32_stage2.py" "$NPROC" \
    --cfg-options train_dataloader.batch_size="$BATCH"
"$PYTHON" tools/publish_checkpoint.py \
    work_dirs/glide_shapes-32_stage2/iter_4000.pth \
    work_dirs/glide_shapes-32/base.safetensors --dtype float16
datasets shapes64 64
bash tools/dist_train.sh "$CONFIGS/glide_shapes-32-64.py" "$NPROC" \
    --cfg-options train_dataloader.batch_size="$BATCH"
PYTHONPATH="$ROOT:${PYTHONPATH:-}" "$PYTHON" tools/train.py \
    "$CONFIGS/glide_shapes-32-clip.py" \
    --cfg-options load_from=work_dirs/glide_shapes-32/base.safetensors
"$PYTHON" tools/publish_checkpoint.py \
    work_dirs/glide_shapes-32-64/iter_1000.pth "$OUT" --dtype float16 \
    --merge work_dirs/glide_shapes-32-clip/iter_2000.pth
bash tools/dist_train.sh "$CONFIGS/glide_shapes-32-inpaint.py" "$NPROC" \
    --cfg-options train_dataloader.batch_size="$BATCH" \
    load_from=work_dirs/glide_shapes-32/base.safetensors
"$PYTHON" tools/publish_checkpoint.py \
    work_dirs/glide_shapes-32-inpaint/iter_1500.pth \
    "$OUT_INPAINT" --dtype float16
echo "train_shapes.sh: wrote $OUT and $OUT_INPAINT"
