# GLIDE's 64x64 inpainting model: infer(init_image=..., mask=...) keeps the
# known region (mask 1). OpenAI's inpaint.ipynb recipe: ancestral over '100'
# with guidance 5 (test_cfg: validation and tools/glide_sample.py).
# Weights: OpenAI's base_inpaint.pt, converted (docs/checkpoints.md).
_base_ = './glide_ddim-classifier-free_laion-64x64.py'

model = dict(
    unet=dict(type='InpaintText2ImUNet'),
    test_cfg=dict(guidance_scale=5.0))
