# The shapes demo's 32x32 base model, stage 1 (4000 steps from scratch), and
# the config that samples it (docs/shapes.md). Both stages in one command:
#   bash tools/train_shapes.sh
# Stage 1 alone (after the datasets): bash tools/dist_train.sh \
#   projects/glide/configs/glide_base-stage1_2xb16-4k_shapes-32x32.py 2
_base_ = [
    './_base_/models/glide_shapes-32x32.py',
    './_base_/datasets/shapes-32x32.py',
    './_base_/schedules/shapes-stage1_4k.py',
    './_base_/shapes_runtime.py',
]
