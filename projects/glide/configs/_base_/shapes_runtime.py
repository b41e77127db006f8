# The runner settings of the shapes runs (2-core CPU, gloo DDP processes):
# logs every 50 steps, a checkpoint every 500 (the last two kept), and an
# EMA whose momentum anneals as max(0.001, 10 / (10 + iter)): a plain 0.999
# EMA of so short a run still holds much of the random initial weights
# (0.999^1000 = 37 % at iteration 1000) and samples noise.
_base_ = './default_runtime.py'

default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, max_keep_ckpts=2))
custom_hooks = [
    dict(type='EMAHook', ema_type='MomentumAnnealingEMA', momentum=0.001,
         gamma=10, priority='ABOVE_NORMAL'),
    dict(type='GlideVisualizationHook', nrow=8)
]
env_cfg = dict(dist_cfg=dict(backend='gloo'))
