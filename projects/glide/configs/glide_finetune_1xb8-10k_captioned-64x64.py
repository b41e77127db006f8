# Fine-tune GLIDE's 64x64 base model on your captioned images
# (docs/training.md):
#   python tools/train.py \
#       projects/glide/configs/glide_finetune_1xb8-10k_captioned-64x64.py \
#       --cfg-options train_dataloader.dataset.data_root=data/my_images \
#       val_dataloader.dataset.data_root=data/my_images \
#       load_from=glide_laion-64x64-02afff47.pth
_base_ = [
    './_base_/models/glide_laion-64x64.py',
    './_base_/datasets/captioned-64x64.py',
    './_base_/schedules/glide-finetune_10k.py',
    './_base_/default_runtime.py',
]

model = dict(
    channels_last=False,  # the faster layout for training
    # GLIDE's objective; 20 % of captions dropped for classifier-free guidance.
    train_cfg=dict(stage='base', p_uncond=0.2, vb_weight=0.001, seed=0),
    test_cfg=dict(guidance_scale=3.0, num_inference_steps=50, seed=0))
