# Fine-tune the full-size GLIDE base model on your captioned images:
#   python tools/train.py projects/glide/configs/glide_finetune_laion-64x64.py \
#       --cfg-options train_dataloader.dataset.data_root=data/my_images \
#       val_dataloader.dataset.data_root=data/my_images \
#       load_from=glide_laion-64x64-02afff47.pth
# data_root holds the images and annotations.jsonl ({"path", "caption"} per
# line; a .csv with path,caption columns works too). Missing or unreadable
# images and bad captions are found when the datasets are built, before the
# first iteration, and skipped (on_error='skip') in training and validation.
_base_ = [
    './glide_ddim-classifier-free_laion-64x64.py',
    './_base_/glide_train_runtime.py'
]

custom_imports = dict(
    imports=[
        'projects.glide.models', 'projects.glide.datasets',
        'projects.glide.evaluation', 'projects.glide.engine'
    ],
    allow_failed_imports=False)

data_root = 'data/captioned'
image_size = 64
train_pipeline = [
    dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
    dict(type='CenterCropLongEdge', keys=['img']),
    dict(type='Resize', keys=['img'], scale=(image_size, image_size),
         keep_ratio=False, interpolation='area'),
    dict(type='Flip', keys=['img'], flip_ratio=0.5, direction='horizontal'),
    dict(type='PackInputs', keys=['img'])
]
val_pipeline = [p for p in train_pipeline if p['type'] != 'Flip']

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='CaptionedImageDataset',
        data_root=data_root,
        ann_file='annotations.jsonl',
        on_error='skip',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CaptionedImageDataset',
        data_root=data_root,
        ann_file='annotations.jsonl',
        on_error='skip',  # as in training: bad items are left out
        indices=16,
        test_mode=True,
        pipeline=val_pipeline))
test_dataloader = val_dataloader

model = dict(
    # Training keeps the contiguous layout (the shapes model, which inherits
    # this, trains 1.4x slower channels-last on the 2-core CPU).
    channels_last=False,
    # GLIDE's objective; 20 % of captions dropped for classifier-free guidance.
    train_cfg=dict(stage='base', p_uncond=0.2, vb_weight=0.001, seed=0),
    test_cfg=dict(guidance_scale=3.0, num_inference_steps=50, seed=0))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=10000, val_interval=1000)
optim_wrapper = dict(
    type='AmpOptimWrapper',  # mixed precision (CUDA); OptimWrapper on CPU
    dtype='bfloat16',
    optimizer=dict(type='AdamW', lr=1e-5, weight_decay=0.0),
    clip_grad=dict(max_norm=1.0))
