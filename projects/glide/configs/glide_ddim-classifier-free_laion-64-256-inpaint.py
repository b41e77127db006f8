# GLIDE inpainting cascade: the inpainting base model, then the inpainting
# upsampler, both keeping the known region.
# Weights: OpenAI's base_inpaint.pt + upsample_inpaint.pt merged by
# tools/convert_glide_checkpoint.py.
_base_ = './glide_ddim-classifier-free_laion-64-256.py'

model = dict(
    unet=dict(type='InpaintText2ImUNet'),
    unet_up=dict(type='SuperResInpaintText2ImUNet'))
