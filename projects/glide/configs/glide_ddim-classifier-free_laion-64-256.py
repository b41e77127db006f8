# GLIDE's cascade: the 64x64 base model, then the 64->256 upsampler (DDIM
# over 'fast27', the reference recipe). MMagic's release name.
# Weights: MMagic's glide_laion-64-256, or OpenAI's base.pt + upsample.pt
# merged by tools/convert_glide_checkpoint.py (docs/checkpoints.md).
_base_ = ['./_base_/models/glide_laion-64-256.py']

default_scope = 'mmagic'
custom_imports = dict(
    imports=['projects.glide.models'], allow_failed_imports=False)
