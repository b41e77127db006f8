"""The GLIDE networks: exact to the reference, MMagic's keys and shapes."""
import pytest
import torch

from mmagic.registry import MODELS
from projects.glide.models import (InpaintText2ImUNet,
                                   SuperResInpaintText2ImUNet,
                                   SuperResText2ImUNet, Text2ImUNet,
                                   openai_to_mmagic)
from tests.conftest import read_key_list
from tests.reference import build_reference_case, reference_inputs

CASES = ['base', 'upsample', 'inpaint', 'upsample_inpaint']


@pytest.mark.parametrize('case', CASES)
def test_forward_matches_reference(case, manifest):
    net, data = build_reference_case(case, manifest)
    with torch.no_grad():
        out = net(data['forward.x'], data['forward.timesteps'],
                  tokens=data['forward.tokens'],
                  mask=data['forward.mask'].bool(), **reference_inputs(data))
    expected = data['forward.output']
    assert out.shape == expected.shape
    err = (out - expected).abs().max().item()
    print(f'{case}: max abs diff {err:.2e}')
    assert err <= 1e-5


def test_precomputed_text_equals_inline_text(manifest):
    net, data = build_reference_case('base', manifest)
    tokens, mask = data['forward.tokens'], data['forward.mask'].bool()
    with torch.no_grad():
        text = net.encode_text(tokens, mask)
        a = net(data['forward.x'], data['forward.timesteps'], text=text)
        b = net(data['forward.x'], data['forward.timesteps'], tokens, mask)
    assert len(text['kv']) == len(net.attention_blocks) > 0
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_text_condition_of_batch_one_broadcasts(manifest):
    net, data = build_reference_case('base', manifest)
    x, t = data['forward.x'], data['forward.timesteps']
    tokens, mask = data['forward.tokens'][:1], data['forward.mask'][:1].bool()
    with torch.no_grad():
        one = net(x, t, text=net.encode_text(tokens, mask))
        many = net(x, t, tokens.expand(len(x), -1), mask.expand(len(x), -1))
    torch.testing.assert_close(one, many)


def _config_nets(config_name):
    from mmengine import Config
    from tests.conftest import CONFIGS
    cfg = Config.fromfile(str(CONFIGS / config_name)).model
    with torch.device('meta'):
        nets = {'unet': MODELS.build(cfg.unet)}
        if cfg.get('unet_up'):
            nets['unet_up'] = MODELS.build(cfg.unet_up)
    return nets


def _shapes(nets):
    return {f'{p}.{k}': tuple(v.shape)
            for p, net in nets.items() for k, v in net.state_dict().items()}


@pytest.mark.parametrize('config,keys', [
    ('glide_ddim-classifier-free_laion-64x64.py',
     'keys_mmagic_glide_laion-64x64.txt.gz'),
    ('glide_ddim-classifier-free_laion-64-256.py',
     'keys_mmagic_glide_laion-64-256.txt.gz'),
])
def test_full_size_keys_equal_mmagic_release(config, keys):
    assert _shapes(_config_nets(config)) == read_key_list(keys)


@pytest.mark.parametrize('config,openai', [
    ('glide_ddim-classifier-free_laion-64-256.py',
     {'unet': 'keys_openai_base.txt.gz',
      'unet_up': 'keys_openai_upsample.txt.gz'}),
    ('glide_ddim-classifier-free_laion-64-256-inpaint.py',
     {'unet': 'keys_openai_base_inpaint.txt.gz',
      'unet_up': 'keys_openai_upsample_inpaint.txt.gz'}),
])
def test_full_size_keys_equal_converted_openai_release(config, openai):
    expected = {}
    for prefix, name in openai.items():
        mapped = openai_to_mmagic(read_key_list(name), prefix=prefix + '.')
        expected.update(mapped)
    assert _shapes(_config_nets(config)) == expected


@pytest.mark.parametrize('config,counts', [
    ('glide_ddim-classifier-free_laion-64-256.py', (385_030_726, 398_361_286)),
    ('glide_ddim-classifier-free_laion-64-256-inpaint.py',
     (385_037_638, 398_368_198)),
])
def test_full_size_parameter_counts(config, counts):
    nets = _config_nets(config)
    got = tuple(sum(p.numel() for p in nets[k].parameters())
                for k in ('unet', 'unet_up'))
    assert got == counts


def test_text_side_parameter_count():
    net = _config_nets('glide_ddim-classifier-free_laion-64x64.py')['unet']
    text = [net.transformer, net.final_ln, net.token_embedding,
            net.transformer_proj]
    n = sum(p.numel() for m in text for p in m.parameters())
    n += net.positional_embedding.numel() + net.padding_embedding.numel()
    assert n == 76_695_808


def tiny_unet(kind=Text2ImUNet, **kw):
    cfg = dict(image_size=16, base_channels=32, resblocks_per_downsample=1,
               channels_cfg=[1, 2], attention_res=(16, 8),
               num_head_channels=16, dropout=0.0, xf_width=32, xf_layers=2,
               xf_heads=2)
    cfg.update(kw)
    return kind(**cfg)


def test_every_parameter_is_initialised():
    torch.manual_seed(0)
    net = tiny_unet()
    for name, p in net.named_parameters():
        assert torch.isfinite(p).all(), name
    assert net.positional_embedding.std() > 0
    assert net.padding_embedding.std() > 0
    # The reference zero-initialises the last conv of each res block and the
    # output conv: a fresh network predicts exactly zero.
    assert (net.out.conv.weight == 0).all()
    assert all((m.conv_2[-1].weight == 0).all() for m in net.modules()
               if hasattr(m, 'conv_2'))
    x = torch.randn(2, 3, 16, 16)
    tokens = torch.randint(0, 50256, (2, 128))
    out = net(x, torch.tensor([10, 500]), tokens,
              torch.ones(2, 128, dtype=torch.bool))
    assert out.shape == (2, 6, 16, 16) and (out == 0).all()


def test_variant_input_channels():
    assert tiny_unet().in_blocks[0][0].in_channels == 3
    assert tiny_unet(SuperResText2ImUNet, image_size=32,
                     channels_cfg=[1, 2, 2]).in_blocks[0][0].in_channels == 6
    assert tiny_unet(InpaintText2ImUNet).in_blocks[0][0].in_channels == 7


def test_variants_declare_what_they_take():
    """Glide reads these capabilities instead of checking classes."""
    plain, up = tiny_unet(), tiny_unet(SuperResText2ImUNet, image_size=32,
                                       channels_cfg=[1, 2, 2])
    inpaint = tiny_unet(InpaintText2ImUNet)
    up_inpaint = tiny_unet(SuperResInpaintText2ImUNet, image_size=32,
                           channels_cfg=[1, 2, 2])
    assert [(n.takes_low_res, n.takes_inpaint)
            for n in (plain, up, inpaint, up_inpaint)] == [
                (False, False), (True, False), (False, True), (True, True)]


def test_attention_backend_is_chosen_per_network():
    """set_sdpa switches one network's blocks between the fused attention
    and the reference's einsum, which agree; other networks keep theirs."""
    torch.manual_seed(0)
    net, other = tiny_unet(), tiny_unet()
    for p in net.parameters():  # no zero-initialised (trivial) outputs
        p.data.normal_(std=0.05)
    x = torch.randn(2, 3, 16, 16)
    tokens = torch.randint(0, 50256, (2, 128))
    mask = torch.ones(2, 128, dtype=torch.bool)
    fused = net(x, torch.tensor([10, 500]), tokens, mask)
    net.set_sdpa(False)
    assert not any(b.use_sdpa for b in net.attention_blocks)
    assert all(b.use_sdpa for b in other.attention_blocks)
    einsum = net(x, torch.tensor([10, 500]), tokens, mask)
    assert fused.abs().max() > 1e-2
    torch.testing.assert_close(einsum, fused, rtol=1e-4, atol=1e-5)


def test_missing_inputs_have_clear_errors():
    net = tiny_unet(SuperResText2ImUNet, image_size=32, channels_cfg=[1, 2, 2])
    x = torch.randn(1, 3, 32, 32)
    tokens = torch.zeros(1, 128, dtype=torch.long)
    mask = torch.ones(1, 128, dtype=torch.bool)
    with pytest.raises(ValueError, match='low_res'):
        net(x, 5, tokens, mask)
    with pytest.raises(ValueError, match=r'tokens must be \(B, 128\)'):
        net(x, 5, tokens[:, :5], mask, low_res=x[..., :16, :16])
    with pytest.raises(TypeError, match='inpaint_mask'):
        tiny_unet()(x[..., :16, :16], 5, tokens, mask, inpaint_mask=x)


def test_mmagic_release_unet_config_builds():
    """MMagic's released config (type MultiHeadAttentionBlock, GN32) builds
    the same network."""
    cfg = dict(
        type='Text2ImUNet', image_size=64, base_channels=192, in_channels=3,
        resblocks_per_downsample=3, attention_res=(32, 16, 8),
        norm_cfg=dict(type='GN32', num_groups=32), dropout=0.1,
        num_classes=0, use_fp16=False, resblock_updown=True,
        attention_cfg=dict(type='MultiHeadAttentionBlock', num_heads=1,
                           num_head_channels=64,
                           use_new_attention_order=False,
                           encoder_channels=512),
        use_scale_shift_norm=True, text_ctx=128, xf_width=512, xf_layers=16,
        xf_heads=8, xf_final_ln=True, xf_padding=True)
    with torch.device('meta'):
        net = MODELS.build(cfg)
    assert {f'unet.{k}': tuple(v.shape) for k, v in
            net.state_dict().items()} == read_key_list(
                'keys_mmagic_glide_laion-64x64.txt.gz')
