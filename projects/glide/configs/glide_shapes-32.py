# A small GLIDE (32x32, 10M parameters, 6.4M of them the GPT-2 token
# embedding) trained from scratch on the procedural shapes dataset, on a
# 2-core CPU: two gloo DDP processes of 16 images and 1 thread each. This
# config is stage 1 (4000 steps from scratch); the shipped weights
# (checkpoints/glide_shapes-32.safetensors) add stage 2,
# glide_shapes-32_stage2.py (4000 more steps from stage 1's EMA weights),
# and this config is the one to sample them with. Both stages, the
# datasets and the publishing, in one command:
#   bash tools/train_shapes.sh
# Stage 1 alone:
#   python tools/make_shapes_dataset.py --out data/shapes --num 20000 --size 32
#   python tools/make_shapes_dataset.py --out data/shapes_val --num 64 \
#       --seed 12345 --size 32
#   bash tools/dist_train.sh projects/glide/configs/glide_shapes-32.py 2
# (one process: tools/train.py CONFIG --cfg-options
# train_dataloader.batch_size=32, the same 32 images per step.)
# Validation samples the held-out prompts of data/shapes_val (another scene
# seed) and scores them with the pixel judge, so the log holds the curve of
# caption accuracy against iterations.
#
# The levers against GLIDE's own objective, which does not bind captions at
# this budget: v-prediction with Min-SNR-5 loss weighting and an x_0-weight
# floor of 1 (what binds the position words, which matter only at the
# highest noise levels: with eps prediction position stays at chance),
# low-frequency training noise
# (low_freq_noise=0.3: without it a 32 px image's mean colour is readable
# from x_t up to t ~ 980 of 1000, the model takes the background from the
# chance means of the initial noise, and the background caption is ignored:
# 0.38 accuracy; with it 1.00), a 16-token text context (the captions have at
# most 15 tokens), 10 % caption dropout, a high learning rate and an EMA
# whose momentum anneals.
_base_ = ['./glide_finetune_laion-64x64.py']

data_root = 'data/shapes'
val_root = 'data/shapes_val'
image_size = 32
max_iters = 4000
model = dict(
    unet=dict(
        image_size=32,
        base_channels=32,
        channels_cfg=[1, 2, 4],
        resblocks_per_downsample=1,
        attention_res=(16, 8),
        num_head_channels=32,
        dropout=0.0,
        text_ctx=16,
        xf_width=128,
        xf_layers=2,
        xf_heads=4),
    diffusion_scheduler=dict(
        type='GlideDPMSolverScheduler', timestep_respacing='25',
        prediction_type='v'),
    train_cfg=dict(
        stage='base', p_uncond=0.1, vb_weight=0.001, min_snr_gamma=5.0,
        min_snr_floor=1.0, low_freq_noise=0.3, seed=0),
    test_cfg=dict(guidance_scale=3.0, num_inference_steps=25, seed=0))

_pipeline = [
    dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
    dict(type='Resize', keys=['img'], scale=(image_size, image_size),
         keep_ratio=False, interpolation='area'),
    # No flips: captions name left and right.
    dict(type='PackInputs', keys=['img'])
]
train_dataloader = dict(
    batch_size=16,  # per process: 2 processes x 16 = 32 images per step
    num_workers=0,
    persistent_workers=False,
    dataset=dict(data_root=data_root, on_error='raise', pipeline=_pipeline))
val_dataloader = dict(
    batch_size=64,
    dataset=dict(data_root=val_root, indices=None, pipeline=_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='GlideSampleMetric', judge='shapes')
test_evaluator = val_evaluator

train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=1000)
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.0, fused=True),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=200),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=200, end=max_iters,
         eta_min=5e-5)
]
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=500, max_keep_ckpts=2))
custom_hooks = [
    # EMA whose momentum anneals as max(0.001, 10 / (10 + iter)): a plain
    # 0.999 EMA of so short a run still holds much of the random initial
    # weights (0.999^1000 = 37 % at iteration 1000) and samples noise.
    dict(type='EMAHook', ema_type='MomentumAnnealingEMA', momentum=0.001,
         gamma=10, priority='ABOVE_NORMAL'),
    dict(type='GlideVisualizationHook', nrow=8)
]
env_cfg = dict(dist_cfg=dict(backend='gloo'))
