# GLIDE inpainting base model (64x64): infer(init_image=..., mask=...) keeps
# the known region (mask 1) and pastes it onto every x_0 prediction.
# Weights: OpenAI's base_inpaint.pt converted by
# tools/convert_glide_checkpoint.py.
_base_ = './glide_ddim-classifier-free_laion-64x64.py'

model = dict(unet=dict(type='InpaintText2ImUNet'))
