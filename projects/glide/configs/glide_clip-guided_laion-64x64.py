# GLIDE base model with CLIP guidance (the paper's second guidance strategy):
# infer(..., classifier_scale=s) follows the gradient of the noised CLIP's
# similarity between the prompt and the noisy sample (s = 0 turns it off);
# it composes with classifier-free guidance (guidance_scale; 1 = off).
# Weights: the base checkpoint plus OpenAI's clip_text_enc.pt and
# clip_image_enc.pt, merged by tools/convert_glide_checkpoint.py.
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
