# Guided distillation of the shapes base model, stage 1 (Meng et al. 2023):
# a student with a guidance input (unet.guidance_embed, zero-initialised:
# it starts as the teacher) learns the teacher's classifier-free-guided
# output for w ~ U[1, 8] in one pass, so each sampling step costs one pass
# instead of two. Teacher and starting weights: the shipped demo model.
# The whole chain (this stage, then 25 -> 13 -> 7 -> 4 steps):
#   bash tools/distill_shapes.sh
_base_ = [
    './_base_/models/glide_shapes-32x32.py',
    './_base_/datasets/shapes-32x32.py',
    './_base_/schedules/shapes-distill.py',
    './_base_/shapes_runtime.py',
]
teacher = 'checkpoints/glide_shapes-32.safetensors'
model = dict(
    unet=dict(guidance_embed=True),
    train_cfg=dict(
        _delete_=True,
        stage='distill_guidance',
        teacher=dict(checkpoint=teacher, guidance_embed=False),
        w_range=(1.0, 8.0),
        p_uncond=0.1,
        seed=0))
load_from = teacher
train_dataloader = dict(batch_size=16)
# A checkpoint every 100 steps: a stopped stage loses little on --resume.
default_hooks = dict(checkpoint=dict(interval=100))
