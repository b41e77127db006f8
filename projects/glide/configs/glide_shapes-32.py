# A small GLIDE (32x32, 10M parameters, 6.4M of them the GPT-2 token
# embedding) trained from scratch on the procedural shapes dataset
# (tools/make_shapes_dataset.py), with classifier-free caption dropout, in
# about 85 minutes on a 2-core CPU (7000 iterations of 32 images, 0.72 s each):
#   python tools/make_shapes_dataset.py --out data/shapes --num 20000 --size 32
#   python tools/train.py projects/glide/configs/glide_shapes-32.py
# Evaluate a checkpoint with tools/eval_shapes.py (judge accuracy vs guidance).
# Status: 4000 iterations (55 min here) learn the scenes but bind the
# captions only weakly (README, "Shapes demo model"); no weights ship yet.
_base_ = ['./glide_finetune_laion-64x64.py']

data_root = 'data/shapes'
image_size = 32
model = dict(
    unet=dict(
        image_size=32,
        base_channels=32,
        channels_cfg=[1, 2, 4],
        resblocks_per_downsample=1,
        attention_res=(16, 8),
        num_head_channels=32,
        dropout=0.0,
        text_ctx=32,
        xf_width=128,
        xf_layers=2,
        xf_heads=4),
    diffusion_scheduler=dict(
        type='GlideDPMSolverScheduler', timestep_respacing='20'),
    train_cfg=dict(stage='base', p_uncond=0.2, vb_weight=0.001, seed=0),
    test_cfg=dict(guidance_scale=3.0, num_inference_steps=20, seed=0))

_pipeline = [
    dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
    dict(type='Resize', keys=['img'], scale=(image_size, image_size),
         keep_ratio=False, interpolation='area'),
    # No flips: captions name left and right.
    dict(type='PackInputs', keys=['img'])
]
train_dataloader = dict(
    batch_size=32,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(data_root=data_root, on_error='raise', pipeline=_pipeline))
val_dataloader = dict(
    batch_size=16,
    dataset=dict(data_root=data_root, indices=16, pipeline=_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='GlideSampleMetric', judge='shapes')
test_evaluator = val_evaluator

train_cfg = dict(type='IterBasedTrainLoop', max_iters=7000, val_interval=1000)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-4, weight_decay=0.0, fused=True),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=200),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=200, end=7000,
         eta_min=5e-5)
]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=1000, max_keep_ckpts=3))
custom_hooks = [
    dict(type='EMAHook', momentum=0.001, priority='ABOVE_NORMAL'),
    dict(type='GlideVisualizationHook', nrow=8)
]
env_cfg = dict(dist_cfg=dict(backend='gloo'))
