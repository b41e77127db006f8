# GLIDE's 64x64 text-conditional base model (385M parameters: a UNet whose
# attention layers also attend to a 16-layer text transformer's tokens) and
# the reference sampler: ancestral over 100 respaced steps with the learned
# variance. Weights: MMagic's glide_laion-64x64-02afff47.pth or OpenAI's
# base.pt (docs/checkpoints.md).
unet = dict(
    type='Text2ImUNet',
    image_size=64,
    in_channels=3,
    base_channels=192,
    resblocks_per_downsample=3,
    channels_cfg=[1, 2, 3, 4],
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
    type='Glide',
    # The images come as the inputs: no data-sample key to preprocess
    # (mmagic's default, 'gt_img', would warn that it is missing).
    data_preprocessor=dict(
        type='DataPreprocessor', mean=[127.5], std=[127.5], data_keys=None),
    channels_last=True,  # the faster layout here (docs/speed.md)
    unet=unet,
    diffusion_scheduler=dict(
        type='GlideAncestralScheduler',
        beta_schedule='squaredcos_cap_v2',
        variance_type='learned_range',
        timestep_respacing='100'))
