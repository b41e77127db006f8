# The shapes inpainting fine-tune: 1500 steps, AdamW 3e-4 warmed up over 50
# steps and annealed to 3e-5; no validation (val_interval past the end).
_base_ = './shapes-stage1_4k.py'

max_iters = 1500
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
optim_wrapper = dict(optimizer=dict(lr=3e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         eta_min=3e-5)
]
