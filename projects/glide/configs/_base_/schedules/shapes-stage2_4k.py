# The shapes base model's stage 2: 4000 more steps, the learning rate warmed
# up again to 5e-4 over 50 steps and annealed to 5e-5; validation every 500.
_base_ = './shapes-stage1_4k.py'

max_iters = 4000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         eta_min=5e-5)
]
