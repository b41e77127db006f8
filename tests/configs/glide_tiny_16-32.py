# A tiny GLIDE cascade (16x16 base, 16->32 upsampler, 2-layer width-32 text
# transformer): the shapes of the reference's golden test models. It samples
# in seconds on a CPU; with random weights its images are noise-like. Used by
# the tests (test-only configs live in tests/configs).
_base_ = ('../../projects/glide/configs/'
          'glide_ddim-classifier-free_laion-64-256.py')

_tiny = dict(
    base_channels=32,
    resblocks_per_downsample=1,
    attention_res=(16, 8),
    num_head_channels=16,
    dropout=0.0,
    xf_width=32,
    xf_layers=2,
    xf_heads=2)

model = dict(
    unet=dict(image_size=16, channels_cfg=[1, 2], **_tiny),
    unet_up=dict(image_size=32, channels_cfg=[1, 2, 2], **_tiny))
