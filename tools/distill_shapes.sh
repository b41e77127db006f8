#!/usr/bin/env bash
# Guided distillation of the shapes base model in one command (Meng et al.
# 2023; docs/distillation.md):
#   bash tools/distill_shapes.sh [OUT]
# 1. the shapes datasets (data/shapes, data/shapes_val), if absent;
# 2. stage 1, glide_distill-guidance_1xb16-1k_shapes-32x32: one pass per
#    step with the guidance scale w as an input (teacher: the shipped demo
#    model, checkpoints/glide_shapes-32.safetensors);
# 3. stage 2, progressive distillation of DDIM: 25 -> 13 -> 7 -> 4 steps
#    (glide_distill-{13,7,4}steps_1xb16-1k_shapes-32x32), each stage's
#    teacher the previous one's published EMA weights
#    (work_dirs/NAME/student.safetensors, float16);
# 4. the 4-step student and the demo upsampler published to OUT (default
#    work_dirs/glide_shapes-32-distilled.safetensors, float16; written
#    whole or not at all).
# Each stage validates with the pixel judge and resumes where it stopped
# when run again (mmengine's --resume from the last complete checkpoint).
set -euo pipefail
OUT=${1:-work_dirs/glide_shapes-32-distilled.safetensors}
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source tools/dist_env.sh
CONFIGS=projects/glide/configs
STAGES=(glide_distill-guidance_1xb16-1k_shapes-32x32
        glide_distill-13steps_1xb16-1k_shapes-32x32
        glide_distill-7steps_1xb16-1k_shapes-32x32
        glide_distill-4steps_1xb16-1k_shapes-32x32)

if [[ ! -f data/shapes/annotations.jsonl ]]; then
  "$PYTHON" tools/make_shapes_dataset.py --out data/shapes --num 20000 \
      --size 32 --quiet
  "$PYTHON" tools/make_shapes_dataset.py --out data/shapes_val --num 64 \
      --seed 12345 --size 32 --quiet
fi
for name in "${STAGES[@]}"; do
  work="work_dirs/$name"
  if [[ ! -f "$work/student.safetensors" ]]; then
    resume=()
    [[ -f "$work/last_checkpoint" ]] && resume=(--resume)
    PYTHONPATH="$ROOT:${PYTHONPATH:-}" "$PYTHON" tools/train.py \
        "$CONFIGS/$name.py" "${resume[@]}"
    "$PYTHON" tools/publish_checkpoint.py "$work/iter_1000.pth" \
        "$work/student.safetensors" --dtype float16
  fi
done
# OUT: the distilled cascade, the 4-step student beside the demo upsampler
# (glide_distilled-4steps_shapes-32-64.py samples it)
"$PYTHON" tools/publish_checkpoint.py "work_dirs/${STAGES[-1]}/iter_1000.pth" \
    "$OUT" --dtype float16 --merge checkpoints/glide_shapes-32.safetensors \
    --merge-only unet_up.
echo "distill_shapes.sh: wrote $OUT"
