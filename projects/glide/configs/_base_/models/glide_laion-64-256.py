# GLIDE's cascade: the 64x64 base model, then the 64->256 text-conditional
# upsampler (398M parameters) with the reference recipe: the base sample
# quantised to 8 bits, DDIM (eta 0) over 'fast27', starting noise x 0.997,
# the same prompt, no guidance.
_base_ = './glide_laion-64x64.py'

unet_up = dict(
    type='SuperResText2ImUNet',
    image_size=256,
    in_channels=3,
    base_channels=192,
    resblocks_per_downsample=2,
    channels_cfg=[1, 1, 2, 2, 4, 4],
    attention_res=(32, 16, 8),
    num_head_channels=64,
    dropout=0.1,
    use_scale_shift_norm=True,
    resblock_updown=True,
    text_ctx=128,
    xf_width=512,
    xf_layers=16,
    xf_heads=8,
    xf_final_ln=True,
    xf_padding=True)

model = dict(
    unet_up=unet_up,
    diffusion_scheduler_up=dict(
        type='GlideDDIMScheduler',
        beta_schedule='linear',
        variance_type='learned_range',
        eta=0.0,
        timestep_respacing='fast27'),
    upsample_temp=0.997)
