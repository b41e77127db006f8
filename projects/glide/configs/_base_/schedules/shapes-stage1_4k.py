# The shapes base model's stage 1: 4000 steps from scratch, AdamW 1e-3
# (gradient clipping at 1) warmed up over 200 steps and annealed (cosine) to
# 5e-5; validation every 1000 steps.
max_iters = 4000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.0, fused=True),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=200),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=200, end=max_iters,
         eta_min=5e-5)
]
