# CLIP guidance on the shapes data: the shapes base model (left untouched)
# with a small noised CLIP trained here contrastively on noised shapes images
# and their captions, one process of 64 images per step (docs/shapes.md):
#   python tools/train.py \
#       projects/glide/configs/glide_noised-clip_1xb64-2k_shapes-32x32.py
_base_ = [
    './_base_/models/glide_shapes-32x32.py',
    './_base_/datasets/shapes-32x32.py',
    './_base_/schedules/shapes-clip_2k.py',
    './_base_/shapes_runtime.py',
]

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
    # the reference ancestral sampler: the CLIP gradient moves the mean by
    # variance x gradient (docs/shapes.md, "CLIP guidance")
    diffusion_scheduler=dict(type='GlideAncestralScheduler',
                             timestep_respacing='50'),
    test_cfg=dict(num_inference_steps=50),
    train_cfg=dict(_delete_=True, stage='clip', seed=0))
train_dataloader = dict(batch_size=64)  # the contrastive batch
# Validation samples text-to-image, which this run does not train.
val_dataloader = None
val_cfg = None
val_evaluator = None
