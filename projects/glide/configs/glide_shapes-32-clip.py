# CLIP guidance on the shapes data: the shapes demo model
# (checkpoints/glide_shapes-32.safetensors, left untouched) with a small
# noised CLIP (NoisedCLIP: a ViT over 32 px images that knows the timestep,
# a causal text tower over CLIP's BPE) trained here contrastively on the
# shapes images noised by the base process at uniform timesteps, their
# captions as the text (train_cfg.stage='clip', Glide.clip_loss). One
# process of 64 images per step (the contrastive batch):
#   python tools/train.py projects/glide/configs/glide_shapes-32-clip.py
# The shipped checkpoints/glide_shapes-32.safetensors holds this guide
# (classifier.*) beside the base and the upsampler, so this config samples
# it: infer(prompt=..., classifier_scale=s) follows the gradient of the
# guide's similarity (guidance_scale=1 for CLIP guidance alone).
# tools/eval_shapes.py --clip compares it with classifier-free guidance.
# Sampling is the reference ancestral sampler (the CLIP gradient moves the
# mean by variance x gradient, as OpenAI's CLIP-guided notebook) over 50
# respaced steps: folded into eps (DDIM, DPM-Solver++) the same gradient
# moves x_0 by (1 - alpha_bar) / sqrt(alpha_bar) x gradient, 2e4 x at the
# first step (t = 999), where this small guide knows little (the held-out
# image's own caption ranked first among 64: 0.61 at t = 0 and 500, 0.27 at
# 750, 0.03 at 999; chance 0.02), and every scale from 0.1 up leaves
# colour, shape and background near chance
# (measured with DPM-Solver++ 25 steps, 16 held-out prompts).
_base_ = ['./glide_shapes-32.py']

max_iters = 2000
load_from = 'checkpoints/glide_shapes-32.safetensors'
model = dict(
    classifier=dict(
        type='NoisedCLIP',
        text_encoder=dict(
            n_vocab=49408,  # CLIP's BPE
            max_text_len=20,  # the captions have at most 17 CLIP tokens
            n_embd=64,
            n_heads=4,
            n_head_state=16,
            n_blocks=2),
        image_encoder=dict(
            image_size=32,
            patch_size=4,
            n_embd=64,
            n_heads=4,
            n_head_state=16,
            n_blocks=4,
            n_timestep=1000),
        # the training temperature too: with CLIP's largest, 100, from the
        # first step both towers collapse to one direction (measured on the
        # tiny test case); OpenAI's CLIP starts at 1 / 0.07 = 14.3.
        logit_scale=10.0),
    diffusion_scheduler=dict(type='GlideAncestralScheduler',
                             timestep_respacing='50'),
    test_cfg=dict(num_inference_steps=50),
    train_cfg=dict(_delete_=True, stage='clip', seed=0))
train_dataloader = dict(batch_size=64)
# Validation samples text-to-image, which this run does not train.
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters + 1)
val_dataloader = None
val_cfg = None
val_evaluator = None
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters,
         eta_min=1e-4)
]
