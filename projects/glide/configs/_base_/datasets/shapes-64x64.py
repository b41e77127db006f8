# The shapes scenes at 64x64 (data/shapes64, data/shapes64_val), for the
# 32->64 upsampler: each training image, area-downsampled to 32 px and
# quantised to 8 bits, is its low-res input.
_base_ = './shapes-32x32.py'

data_root = 'data/shapes64'
val_root = 'data/shapes64_val'
image_size = 64
_pipeline = [
    dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
    dict(type='Resize', keys=['img'], scale=(image_size, image_size),
         keep_ratio=False, interpolation='area'),
    dict(type='PackInputs', keys=['img'])
]
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=_pipeline))
val_dataloader = dict(dataset=dict(data_root=val_root, pipeline=_pipeline))
test_dataloader = val_dataloader
