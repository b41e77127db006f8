# The shapes CLIP guide: 2000 steps, AdamW 1e-3 warmed up over 100 steps and
# annealed to 1e-4; no validation (val_interval past the end).
_base_ = './shapes-stage1_4k.py'

max_iters = 2000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters,
         eta_min=1e-4)
]
