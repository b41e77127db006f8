# Runner settings shared by the GLIDE training configs (mmengine Runner:
# tools/train.py, tools/test.py, tools/dist_train.sh).
default_scope = 'mmagic'
custom_imports = dict(
    imports=[
        'projects.glide.models', 'projects.glide.datasets',
        'projects.glide.evaluation', 'projects.glide.engine'
    ],
    allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # mmengine's CheckpointHook, its last_checkpoint written atomically
    # (projects/glide/engine/checkpointing.py)
    checkpoint=dict(type='GlideCheckpointHook', interval=1000,
                    by_epoch=False, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
# EMA of the weights (mmengine's): checkpoints and validation use it.
custom_hooks = [
    dict(type='EMAHook', momentum=0.0001, priority='ABOVE_NORMAL'),
    dict(type='GlideVisualizationHook', nrow=8)
]
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))  # 'gloo' for CPU processes
visualizer = dict(type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=False)
# Checkpoints written whole or not at all (a temporary file renamed);
# tools/train.py and tools/test.py use it too.
runner_type = 'GlideRunner'
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
