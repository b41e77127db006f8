# 10,000 steps at a constant 1e-5 (AdamW, gradient clipping at 1), mixed
# precision; validation every 1000 steps.
train_cfg = dict(type='IterBasedTrainLoop', max_iters=10000, val_interval=1000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='AmpOptimWrapper',  # mixed precision (CUDA); OptimWrapper on CPU
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=1e-5, weight_decay=0.0),
    clip_grad=dict(max_norm=1.0))
