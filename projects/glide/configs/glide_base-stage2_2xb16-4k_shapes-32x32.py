# Stage 2 of the shapes demo's base model: 4000 more steps of the same
# objective from stage 1's float16 EMA weights, which tools/train_shapes.sh
# publishes before it runs (docs/shapes.md):
#   bash tools/dist_train.sh \
#       projects/glide/configs/glide_base-stage2_2xb16-4k_shapes-32x32.py 2
_base_ = [
    './_base_/models/glide_shapes-32x32.py',
    './_base_/datasets/shapes-32x32.py',
    './_base_/schedules/shapes-stage2_4k.py',
    './_base_/shapes_runtime.py',
]

load_from = ('work_dirs/glide_base-stage1_2xb16-4k_shapes-32x32/'
             'stage1.safetensors')
