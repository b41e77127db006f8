# A tiny GLIDE base model (16x16) trained from scratch: what the tests run on
# CPU in seconds. Point data_root at a folder with annotations.jsonl.
_base_ = ['../../projects/glide/configs/'
          'glide_finetune_1xb8-10k_captioned-64x64.py']

data_root = 'data/tiny'
image_size = 16
_tiny = dict(
    image_size=16,
    base_channels=32,
    channels_cfg=[1, 2],
    resblocks_per_downsample=1,
    attention_res=(16, 8),
    num_head_channels=16,
    dropout=0.0,
    xf_width=32,
    xf_layers=2,
    xf_heads=2)
model = dict(
    unet=_tiny,
    test_cfg=dict(guidance_scale=3.0, num_inference_steps=10, seed=0))

_pipeline = [
    dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
    dict(type='CenterCropLongEdge', keys=['img']),
    dict(type='Resize', keys=['img'], scale=(image_size, image_size),
         keep_ratio=False, interpolation='area'),
    dict(type='PackInputs', keys=['img'])
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, pipeline=_pipeline))
val_dataloader = dict(
    batch_size=4,
    dataset=dict(data_root=data_root, indices=4, pipeline=_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(type='IterBasedTrainLoop', max_iters=40, val_interval=40)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.0),
    clip_grad=dict(max_norm=1.0))
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=20))
custom_hooks = [
    dict(type='EMAHook', momentum=0.05, priority='ABOVE_NORMAL'),
    dict(type='GlideVisualizationHook', nrow=4)
]
env_cfg = dict(dist_cfg=dict(backend='gloo'))
