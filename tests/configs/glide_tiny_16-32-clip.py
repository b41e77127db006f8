# The tiny GLIDE cascade with a tiny noised-CLIP guide (the shapes of the
# reference's golden CLIP case): CLIP guidance in seconds on a CPU.
_base_ = './glide_tiny_16-32.py'

model = dict(
    classifier=dict(
        type='NoisedCLIP',
        text_encoder=dict(
            n_vocab=65536,
            max_text_len=77,
            n_embd=32,
            n_heads=2,
            n_head_state=16,
            n_blocks=2),
        image_encoder=dict(
            image_size=16,
            patch_size=4,
            n_embd=32,
            n_heads=2,
            n_head_state=16,
            n_blocks=2,
            n_timestep=1000),
        logit_scale=100.0))
