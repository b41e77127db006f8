# GLIDE base model (64x64, 385M parameters) with the reference sampling
# recipe: ancestral sampling over 100 respaced steps with the learned
# variance, classifier-free guidance (infer's guidance_scale, 3.0 by default).
# The file name is MMagic's: the base model samples with the reference's
# ancestral sampler, not DDIM (set diffusion_scheduler.type, or
# tools/glide_sample.py --sampler, for DDIM or DPM-Solver++).
# Precision: add dtype='float16' or 'bfloat16' to model (or call
# model.set_precision(...) after loading); float32 by default. bfloat16 is
# the faster one on CPUs with AVX512-BF16/AMX (tools/benchmark.py measures
# it: README, Speed), float16 on GPUs.
# Memory format: channels-last, the faster layout for these networks on the
# CPU measured (bfloat16: base step 0.94x as long, upsampler 0.90x; float32:
# 0.93-0.97x and 0.89-1.01x across runs; README, Speed).
# Weights: MMagic's glide_laion-64x64-02afff47.pth, or OpenAI's base.pt
# converted with tools/convert_glide_checkpoint.py.
default_scope = 'mmagic'
custom_imports = dict(
    imports=['projects.glide.models'], allow_failed_imports=False)

unet = dict(
    type='Text2ImUNet',
    image_size=64,
    in_channels=3,
    base_channels=192,
    resblocks_per_downsample=3,
    channels_cfg=[1, 2, 3, 4],
    attention_res=(32, 16, 8),
    num_head_channels=64,
    dropout=0.1,
    use_scale_shift_norm=True,
    resblock_updown=True,
    text_ctx=128,
    xf_width=512,
    xf_layers=16,
    xf_heads=8,
    xf_final_ln=True,
    xf_padding=True)

model = dict(
    type='Glide',
    data_preprocessor=dict(type='DataPreprocessor', mean=[127.5], std=[127.5]),
    channels_last=True,
    unet=unet,
    diffusion_scheduler=dict(
        type='GlideAncestralScheduler',
        beta_schedule='squaredcos_cap_v2',
        variance_type='learned_range',
        timestep_respacing='100'))
