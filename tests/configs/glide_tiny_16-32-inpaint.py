# The tiny GLIDE cascade with the inpainting networks (see glide_tiny_16-32)
# and the inpainting recipe of glide_inpaint-classifier-free_laion-64-256
# (ancestral upsampler over 'fast27', guidance 5).
_base_ = './glide_tiny_16-32.py'

model = dict(
    unet=dict(type='InpaintText2ImUNet'),
    unet_up=dict(type='SuperResInpaintText2ImUNet'),
    diffusion_scheduler_up=dict(
        _delete_=True,
        type='GlideAncestralScheduler',
        beta_schedule='linear',
        variance_type='learned_range',
        timestep_respacing='fast27'),
    test_cfg=dict(guidance_scale=5.0))
