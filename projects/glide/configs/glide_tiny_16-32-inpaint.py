# The tiny GLIDE cascade with the inpainting networks (see glide_tiny_16-32).
_base_ = './glide_tiny_16-32.py'

model = dict(
    unet=dict(type='InpaintText2ImUNet'),
    unet_up=dict(type='SuperResInpaintText2ImUNet'))
