# GLIDE's inpainting cascade, both stages keeping the known region. OpenAI's
# inpaint.ipynb recipe: the base model ancestral over '100' with guidance 5,
# the upsampler ancestral (not DDIM) over 'fast27'.
# Weights: OpenAI's base_inpaint.pt + upsample_inpaint.pt, converted.
_base_ = './glide_ddim-classifier-free_laion-64-256.py'

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
