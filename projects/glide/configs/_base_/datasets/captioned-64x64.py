# Your captioned images at 64x64 (CaptionedImageDataset): data_root holds
# the images and annotations.jsonl ({"path", "caption"} per line; a .csv
# with path,caption columns works too). Missing or unreadable images and bad
# captions are found when the datasets are built, before the first
# iteration, and skipped (on_error='skip') in training and validation.
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

# Samples of the dataset's captions: sanity, diversity, distance to the
# dataset image (and FID with a local Inception file).
val_evaluator = dict(type='GlideSampleMetric')
test_evaluator = val_evaluator
