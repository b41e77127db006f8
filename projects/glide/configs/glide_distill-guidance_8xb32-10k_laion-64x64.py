# Guided distillation of the released 64x64 GLIDE base model, stage 1 (Meng
# et al. 2023; docs/distillation.md, "Full size"): a student with a guidance
# input learns the classifier-free-guided output for w ~ U[1, 8] in one
# pass. Teacher and starting weights: MMagic's release (or OpenAI's base.pt
# converted by tools/convert_glide_checkpoint.py); captions and images as in
# glide_finetune_1xb8-10k_captioned-64x64 (data/captioned). On 8 GPUs:
#   bash tools/dist_train.sh \
#       projects/glide/configs/glide_distill-guidance_8xb32-10k_laion-64x64.py 8
_base_ = ['./glide_finetune_1xb8-10k_captioned-64x64.py']
teacher = 'glide_laion-64x64-02afff47.pth'
model = dict(
    unet=dict(guidance_embed=True),
    diffusion_scheduler=dict(
        _delete_=True,
        type='GlideDDIMScheduler',
        beta_schedule='squaredcos_cap_v2',
        variance_type='learned_range',
        timestep_respacing='97',
        prediction_type='eps'),
    train_cfg=dict(
        _delete_=True,
        stage='distill_guidance',
        teacher=dict(checkpoint=teacher, guidance_embed=False),
        w_range=(1.0, 8.0),
        p_uncond=0.1,
        seed=0),
    test_cfg=dict(num_inference_steps=97))
load_from = teacher
train_dataloader = dict(batch_size=32)
