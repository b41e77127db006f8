# A distillation stage of the shapes base model (Meng et al. 2023): AdamW
# 2e-4 (gradient clipping at 1) warmed up over 50 steps and annealed
# (cosine) to 1e-5; validation (the pixel judge on the held-out prompts)
# every 500 steps. Each stage config sets max_iters.
max_iters = 1000
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, weight_decay=0.0, fused=True),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=50),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=max_iters,
         eta_min=1e-5)
]
