# The procedural shapes scenes at 32x32 (tools/make_shapes_dataset.py):
# data/shapes for training, data/shapes_val (64 held-out scenes of another
# seed) for validation, whose samples the pixel judge scores.
data_root = 'data/shapes'
val_root = 'data/shapes_val'
image_size = 32
_pipeline = [
    dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
    dict(type='Resize', keys=['img'], scale=(image_size, image_size),
         keep_ratio=False, interpolation='area'),
    # No flips: captions name left and right.
    dict(type='PackInputs', keys=['img'])
]

train_dataloader = dict(
    batch_size=16,  # per process: 2 processes x 16 = 32 images per step
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='CaptionedImageDataset',
        data_root=data_root,
        ann_file='annotations.jsonl',
        on_error='raise',
        pipeline=_pipeline))
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CaptionedImageDataset',
        data_root=val_root,
        ann_file='annotations.jsonl',
        on_error='skip',
        indices=None,  # all of them
        test_mode=True,
        pipeline=_pipeline))
test_dataloader = val_dataloader

# The caption accuracy of the samples (colour, shape, size, position,
# background), read from the pixels.
val_evaluator = dict(type='GlideSampleMetric', judge='shapes')
test_evaluator = val_evaluator
