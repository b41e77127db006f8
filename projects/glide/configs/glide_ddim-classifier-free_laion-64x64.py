# GLIDE's 64x64 base model with classifier-free guidance. The name is
# MMagic's; it samples with the reference's ancestral sampler over '100'.
# Weights: MMagic's glide_laion-64x64-02afff47.pth, or OpenAI's base.pt
# converted by tools/convert_glide_checkpoint.py (docs/checkpoints.md).
_base_ = ['./_base_/models/glide_laion-64x64.py']

default_scope = 'mmagic'
custom_imports = dict(
    imports=['projects.glide.models'], allow_failed_imports=False)
