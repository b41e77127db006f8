# The small GLIDE of the shapes demo (32x32, 10M parameters, 6.4M of them
# the GPT-2 token embedding) and its training objective: v-prediction,
# Min-SNR-5 loss weights with an x_0-weight floor of 1, low-frequency
# training noise, 10 % caption dropout (docs/shapes.md, "The recipe").
# Sampling: DPM-Solver++ 25 steps, classifier-free guidance 3.
# The model knows only the shapes captions' words: the CLI and the web page
# name the words of a prompt outside them (projects/glide/api.py).
prompt_vocabulary = 'shapes'
model = dict(
    type='Glide',
    # The images come as the inputs: no data-sample key to preprocess
    # (mmagic's default, 'gt_img', would warn that it is missing).
    data_preprocessor=dict(
        type='DataPreprocessor', mean=[127.5], std=[127.5], data_keys=None),
    # the contiguous layout trains 1.4x faster here than channels-last
    channels_last=False,
    unet=dict(
        type='Text2ImUNet',
        image_size=32,
        in_channels=3,
        base_channels=32,
        resblocks_per_downsample=1,
        channels_cfg=[1, 2, 4],
        attention_res=(16, 8),
        num_head_channels=32,
        dropout=0.0,
        use_scale_shift_norm=True,
        resblock_updown=True,
        text_ctx=16,  # the captions have at most 15 tokens
        xf_width=128,
        xf_layers=2,
        xf_heads=4,
        xf_final_ln=True,
        xf_padding=True),
    diffusion_scheduler=dict(
        type='GlideDPMSolverScheduler',
        beta_schedule='squaredcos_cap_v2',
        variance_type='learned_range',
        timestep_respacing='25',
        prediction_type='v'),
    train_cfg=dict(
        stage='base', p_uncond=0.1, vb_weight=0.001, min_snr_gamma=5.0,
        min_snr_floor=1.0, low_freq_noise=0.3, seed=0),
    test_cfg=dict(guidance_scale=3.0, num_inference_steps=25, seed=0))
