# The shapes upsampler: 1000 steps, AdamW 5e-4 warmed up over 100 steps and
# annealed to 5e-5; validation every 500.
_base_ = './shapes-stage1_4k.py'

max_iters = 1000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters,
         eta_min=5e-5)
]
