"""The GLIDE networks: exact to the reference, MMagic's keys and shapes."""
import pytest
import torch
import torch.nn.functional as F

from mmagic.registry import MODELS
from projects.glide.models import (InpaintText2ImUNet,
                                   SuperResInpaintText2ImUNet,
                                   SuperResText2ImUNet, Text2ImUNet,
                                   openai_to_mmagic)
from projects.glide.models.precision import cast_network
from projects.glide.models.attention import chunked_attention
from projects.glide.models.group_norm import GroupNorm32
from tests.conftest import read_key_list
from tests.reference import build_reference_case, reference_inputs

CASES = ['base', 'upsample', 'inpaint', 'upsample_inpaint']


def reference_forward(net, data):
    """The network on a golden case's stored inputs."""
    with torch.no_grad():
        return net(data['forward.x'], data['forward.timesteps'],
                   tokens=data['forward.tokens'],
                   mask=data['forward.mask'].bool(), **reference_inputs(data))


@pytest.mark.parametrize('case', CASES)
def test_forward_matches_reference(case, manifest):
    net, data = build_reference_case(case, manifest)
    out = reference_forward(net, data)
    expected = data['forward.output']
    assert out.shape == expected.shape
    err = (out - expected).abs().max().item()
    print(f'{case}: max abs diff {err:.2e}')
    assert err <= 1e-5


@pytest.mark.parametrize('case', CASES)
def test_channels_last_forward_matches_reference(case, manifest):
    """The layout Glide(channels_last=True) uses computes the same network:
    float32 sums in another order (measured 0.6-1.3e-5 from the golden
    output, whose values reach 2.9; contiguous 0.5-1.0e-5), so 3e-5; a wrong
    operation is off by 1e-3 or more."""
    net, data = build_reference_case(case, manifest)
    net.to(memory_format=torch.channels_last)
    out = reference_forward(net, data)
    err = (out - data['forward.output']).abs().max().item()
    print(f'{case} channels_last: max abs diff {err:.2e}')
    assert err <= 3e-5


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('channels_last', [False, True])
def test_bfloat16_forward_stays_near_reference(case, channels_last,
                                               manifest):
    """bfloat16 weights and activations (GroupNorm on the bfloat16 input,
    the chunked attention) against the reference's float32 output: RMS
    error / RMS output measured 2.6-3.4 % (max error / max output 2.4-5.2 %),
    the same as before these optimisations (float32 GroupNorm copies,
    torch's attention: 2.7-3.4 %); tolerances 5 % and 8 %."""
    net, data = build_reference_case(case, manifest)
    cast_network(net, torch.bfloat16)
    if channels_last:
        net.to(memory_format=torch.channels_last)
    out = reference_forward(net, data)
    expected = data['forward.output']
    assert out.dtype == torch.float32
    rms = ((out - expected).pow(2).mean().sqrt() /
           expected.pow(2).mean().sqrt()).item()
    peak = ((out - expected).abs().max() / expected.abs().max()).item()
    print(f'{case} bfloat16: RMS {rms:.2%}, max {peak:.2%}')
    assert rms <= 0.05 and peak <= 0.08


def test_groupnorm32_on_bfloat16_input_is_float32_rounded_once():
    """The CPU kernel reads bfloat16 directly (no float32 copy) and returns
    the float32 computation rounded to bfloat16: one rounding step at most
    from the reference's float32-then-round."""
    torch.manual_seed(0)
    norm = GroupNorm32(64)
    norm.weight.data.normal_(1, 0.2)
    norm.bias.data.normal_(0, 0.2)
    x = (torch.randn(2, 64, 8, 8) * 3 + 1).bfloat16()
    expected = F.group_norm(x.float(), 32, norm.weight, norm.bias,
                            norm.eps).bfloat16()
    for inp in (x, x.to(memory_format=torch.channels_last)):
        out = norm(inp)
        assert out.dtype == torch.bfloat16
        torch.testing.assert_close(out.float(), expected.float(),
                                   rtol=2**-7, atol=1e-5)
    assert norm(x.float()).dtype == torch.float32


@pytest.mark.parametrize('budget', [1 << 23, 4096])
def test_chunked_attention_matches_exact_attention(budget):
    """In one block (8 MiB of scores) or in blocks of 16 queries and a
    remainder (4 KiB): the exact attention, to bfloat16's precision."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, n, 16, generator=gen).bfloat16()
               for n in (72, 80, 80))
    out = chunked_attention(q, k, v, 16**-0.5, budget)
    assert out.shape == (2, 3, 72, 16) and out.dtype == torch.bfloat16
    exact = F.scaled_dot_product_attention(q.double(), k.double(),
                                           v.double(), scale=16**-0.5)
    err = (out.double() - exact).abs().max().item()
    assert err <= 2e-2, err
    assert exact.abs().max() > 0.5


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
    ('glide_inpaint-classifier-free_laion-64-256.py',
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
    ('glide_inpaint-classifier-free_laion-64-256.py',
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
