# The shapes cascade: the 32x32 demo model (glide_shapes-32.py), then a
# small text-conditional 32->64 upsampler (SuperResText2ImUNet) sampled
# with the reference recipe: the base sample quantised to 8 bits, DDIM
# (eta 0) over the 'fast27' respacing of the linear schedule, starting noise
# x 0.997, the same prompt, no guidance.
# This config also trains the upsampler (train_cfg.stage='upsample': each
# 64 px training image, area-downsampled to 32 px and quantised to 8 bits,
# is the low-res input; GLIDE's learned-variance objective), starting
# from the base model's weights (tools/train_shapes.sh publishes them to
# work_dirs/glide_shapes-32/base.safetensors), whose base UNet it leaves
# untouched (frozen). The upsampler predicts v, as the base model does
# (prediction_type='v', Min-SNR-5 weights with the x_0 floor of 1, white
# noise). With GLIDE's eps objective it takes the background from x_t
# rather than from the low-res image: at high noise an eps network's x_0
# estimate is its eps error amplified by 1 / sqrt(alpha_bar) (156 at
# t = 1000), so the early steps leave x_t's mean colour to chance, and later
# steps (where a 64 px image's mean colour is readable from x_t up to
# t ~ 900) keep it. Measured, 64 held-out prompts x 2, background accuracy:
# eps with white noise 0.38 (validation, step 500); eps with low-frequency
# training noise 0.99 but tinted and with residual white noise (all five
# 0.62 against the base model's 0.91); v: see README, "Shapes".
#   python tools/make_shapes_dataset.py --out data/shapes64 --num 20000 \
#       --size 64
#   python tools/make_shapes_dataset.py --out data/shapes64_val --num 64 \
#       --seed 12345 --size 64
#   bash tools/dist_train.sh projects/glide/configs/glide_shapes-32-64.py 2
#   python tools/publish_checkpoint.py \
#       work_dirs/glide_shapes-32-64/iter_1000.pth \
#       work_dirs/glide_shapes-32.safetensors --dtype float16 \
#       --merge work_dirs/glide_shapes-32-clip/iter_2000.pth
# The shipped checkpoints/glide_shapes-32.safetensors is that file: the
# cascade and the CLIP guide (glide_shapes-32-clip.py); glide_shapes-32.py
# loads its base network alone.
# Validation samples the whole cascade on the held-out prompts and scores
# the 64 px images with the pixel judge.
_base_ = ['./glide_shapes-32.py']

data_root = 'data/shapes64'
val_root = 'data/shapes64_val'
image_size = 64
max_iters = 1000
load_from = 'work_dirs/glide_shapes-32/base.safetensors'
model = dict(
    unet_up=dict(
        type='SuperResText2ImUNet',
        image_size=64,
        base_channels=32,
        channels_cfg=[1, 2, 2, 4],
        resblocks_per_downsample=1,
        attention_res=(16, 8),
        num_head_channels=32,
        dropout=0.0,
        use_scale_shift_norm=True,
        resblock_updown=True,
        text_ctx=16,
        xf_width=64,
        xf_layers=1,
        xf_heads=4),
    diffusion_scheduler_up=dict(
        type='GlideDDIMScheduler',
        beta_schedule='linear',
        variance_type='learned_range',
        eta=0.0,
        timestep_respacing='fast27',
        prediction_type='v'),
    upsample_temp=0.997,
    train_cfg=dict(
        _delete_=True, stage='upsample', p_uncond=0.1, vb_weight=0.001,
        min_snr_gamma=5.0, min_snr_floor=1.0, seed=0))

_pipeline = [
    dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
    dict(type='Resize', keys=['img'], scale=(image_size, image_size),
         keep_ratio=False, interpolation='area'),
    dict(type='PackInputs', keys=['img'])
]
train_dataloader = dict(
    dataset=dict(data_root=data_root, pipeline=_pipeline))
val_dataloader = dict(
    dataset=dict(data_root=val_root, pipeline=_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
optim_wrapper = dict(optimizer=dict(lr=5e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters,
         eta_min=5e-5)
]
