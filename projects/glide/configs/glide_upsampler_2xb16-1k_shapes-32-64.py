# The shapes cascade (what `make demo` samples): the 32x32 base model, then
# its 32->64 upsampler, which this config trains from the base model's
# weights, leaving the base network untouched (docs/shapes.md, "The cascade"):
#   bash tools/dist_train.sh \
#       projects/glide/configs/glide_upsampler_2xb16-1k_shapes-32-64.py 2
_base_ = [
    './_base_/models/glide_shapes-32-64.py',
    './_base_/datasets/shapes-64x64.py',
    './_base_/schedules/shapes-upsampler_1k.py',
    './_base_/shapes_runtime.py',
]

load_from = ('work_dirs/glide_base-stage1_2xb16-4k_shapes-32x32/'
             'base.safetensors')
model = dict(
    train_cfg=dict(
        _delete_=True, stage='upsample', p_uncond=0.1, vb_weight=0.001,
        min_snr_gamma=5.0, min_snr_floor=1.0, seed=0))
