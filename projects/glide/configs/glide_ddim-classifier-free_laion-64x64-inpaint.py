# GLIDE inpainting base model (64x64): infer(init_image=..., mask=...) keeps
# the known region (mask 1) and pastes it onto every x_0 prediction.
# The reference recipe (OpenAI's inpaint.ipynb): ancestral sampling over
# '100' respaced steps with classifier-free guidance 5 (test_cfg here, which
# validation and tools/glide_sample.py use; infer's own default is 3).
# Weights: OpenAI's base_inpaint.pt converted by
# tools/convert_glide_checkpoint.py.
_base_ = './glide_ddim-classifier-free_laion-64x64.py'

model = dict(
    unet=dict(type='InpaintText2ImUNet'),
    test_cfg=dict(guidance_scale=5.0))
