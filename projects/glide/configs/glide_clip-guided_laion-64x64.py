# GLIDE's 64x64 base model with CLIP guidance: infer(...,
# classifier_scale=s) follows the noised CLIP's similarity gradient; it
# composes with classifier-free guidance (docs/clip_guidance.md).
# Weights: OpenAI's base.pt + clip_text_enc.pt + clip_image_enc.pt, merged
# by tools/convert_glide_checkpoint.py.
_base_ = './glide_ddim-classifier-free_laion-64x64.py'

model = dict(
    classifier=dict(
        type='NoisedCLIP',
        text_encoder=dict(
            n_vocab=65536,
            max_text_len=77,
            n_embd=512,
            n_heads=8,
            n_head_state=64,
            n_blocks=12),
        image_encoder=dict(
            image_size=64,
            patch_size=4,
            n_embd=512,
            n_heads=12,
            n_head_state=64,
            n_blocks=12,
            n_timestep=1000),
        logit_scale=100.0))
