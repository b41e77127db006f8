# GLIDE inpainting cascade: the inpainting base model, then the inpainting
# upsampler, both keeping the known region (infer(init_image=..., mask=...)).
# The reference recipe of OpenAI's inpainting notebook (inpaint.ipynb), which
# differs from the text-to-image one: the upsampler samples with the
# ancestral sampler (p_sample_loop) over 'fast27', not DDIM; the base model
# samples ancestrally over '100' with classifier-free guidance 5 (test_cfg
# here, which validation and tools/glide_sample.py use; infer's own default
# is 3).
# Weights: OpenAI's base_inpaint.pt + upsample_inpaint.pt merged by
# tools/convert_glide_checkpoint.py.
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
