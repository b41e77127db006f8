# The shapes cascade: the 32x32 base model, then a small text-conditional
# 32->64 upsampler (7.1M parameters, predicting v as the base model does)
# sampled with the reference recipe: the base sample quantised to 8 bits,
# DDIM (eta 0) over 'fast27' of the linear schedule, starting noise x 0.997,
# the same prompt, no guidance.
_base_ = './glide_shapes-32x32.py'

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
    upsample_temp=0.997)
