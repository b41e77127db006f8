"""Low-rank adapters on Glide: every path sees them, only they train,
load/unload/merge are exact, a wrong adapter file is a clear error."""
import pytest
import torch
import torch.nn as nn

from mmagic.apis import init_model
from projects.glide.models import lora
from projects.glide.models.checkpoint import save_state_dict
from tests.conftest import TEST_CONFIGS
from tests.models.test_glide import randomize

TINY = str(TEST_CONFIGS / 'glide_tiny_16-32.py')
LORA = dict(rank=2, scale=0.5)


def build(lora_config=None, checkpoint=None, **cfg):
    from mmengine import Config
    config = Config.fromfile(TINY)
    config.model.update(cfg)
    if lora_config is not None:
        config.model.lora_config = lora_config
    return init_model(config, checkpoint, device='cpu')


def unet_out(model):
    """The base UNet's output on fixed inputs (prompts through the text
    transformer and every attention block's text keys/values)."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 16, 16, generator=gen)
    tokens, mask = model.tokenizer(['a red square', ''], device='cpu')
    with torch.no_grad():
        return model.unet(x, torch.tensor([500, 20]), tokens=tokens,
                          mask=mask)


def train_adapters(model, seed=0):
    """Stand-in for training: random ``up`` matrices (non-identity)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora.adapted_layers(model).values():
            for adapter in layer.lora.values():
                adapter.up.copy_(0.2 * torch.randn(adapter.up.shape,
                                                   generator=gen))
    return model


@pytest.fixture(scope='module')
def base_ckpt(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('base') / 'base.safetensors')
    save_state_dict(randomize(build()).state_dict(), path)
    return path


@pytest.fixture(scope='module')
def adapter_file(tmp_path_factory, base_ckpt):
    """A model with trained adapters and its adapter file."""
    model = train_adapters(build(LORA, base_ckpt))
    path = str(tmp_path_factory.mktemp('adapter') / 'style.safetensors')
    model.save_lora(path)
    return model, path


def test_a_wrapped_layer_is_never_called_on_the_attention_fast_path(
        base_ckpt):
    """Why adapters adapt the weight: the attention block reads
    ``qkv.weight`` and ``proj_out.weight`` through F.linear, so a layer
    wrapper (mmagic's LoRAWrapper, peft) never runs there."""
    model = build(checkpoint=base_ckpt)
    calls = []
    for block in model.unet.attention_blocks:
        for layer in (block.qkv, block.proj_out):
            layer.register_forward_hook(lambda *a: calls.append(1))
    unet_out(model)
    assert calls == []
    model.unet.set_sdpa(False)  # the reference's einsum path calls them
    unet_out(model)
    assert len(calls) == 2 * len(model.unet.attention_blocks)


def test_lora_config_adds_identity_adapters_and_freezes_the_rest(base_ckpt):
    plain = build(checkpoint=base_ckpt)
    model = build(LORA, base_ckpt)  # a base checkpoint loads (load_from)
    names = list(lora.adapted_layers(model))
    assert names and all(n.startswith('unet.') for n in names)
    suffixes = {n.rsplit('.', 1)[-1] for n in names}
    assert suffixes == set(lora.DEFAULT_TARGETS)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(lora.is_adapter_key(n) for n in trainable)
    assert torch.equal(unet_out(model), unet_out(plain))  # up = 0


def test_only_adapters_get_gradients(base_ckpt):
    from mmagic.structures import DataSample
    model = build(LORA, base_ckpt)
    model.train_cfg = dict(stage='base', p_uncond=0.0)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    losses = model(x, [DataSample(prompt='a red square')] * 2, mode='loss')
    sum(losses.values()).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    ups = {n for n in with_grad if n.endswith('.up')}
    assert with_grad and all(lora.is_adapter_key(n) for n in with_grad)
    assert len(ups) == len(lora.adapted_layers(model))  # every layer used


def test_every_path_sees_the_adapted_weight(adapter_file, base_ckpt):
    """The F.linear fast path, the einsum path (Conv1d.forward) and a
    model whose weights are the merged ones agree."""
    model, _ = adapter_file
    fast = unet_out(model)
    model.unet.set_sdpa(False)
    legacy = unet_out(model)
    model.unet.set_sdpa(True)
    merged = build(checkpoint=base_ckpt)
    merged.load_state_dict(lora.merged_state_dict(model))
    assert not torch.allclose(fast, unet_out(build(checkpoint=base_ckpt)),
                              atol=1e-3)
    torch.testing.assert_close(legacy, fast, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(unet_out(merged), fast, rtol=1e-4, atol=1e-5)
    assert set(lora.merged_state_dict(model)) == set(merged.state_dict())


def test_load_then_unload_restores_the_very_same_weights(adapter_file,
                                                         base_ckpt):
    trained, path = adapter_file
    model = build(checkpoint=base_ckpt)
    before = {n: (p, p.detach().clone()) for n, p in model.named_parameters()}
    types = {n: type(m) for n, m in model.named_modules()}
    out = unet_out(model)
    assert model.load_lora(path) == 'style'
    adapted = unet_out(model)
    torch.testing.assert_close(adapted, unet_out(trained), rtol=1e-3,
                               atol=1e-3)  # float16 file
    model.unload_lora()
    after = dict(model.named_parameters())
    assert after.keys() == before.keys()
    for n, (param, copy) in before.items():
        assert after[n] is param and torch.equal(param, copy), n
    assert {n: type(m) for n, m in model.named_modules()} == types
    assert torch.equal(unet_out(model), out)


def test_scale_and_several_adapters(adapter_file, base_ckpt, tmp_path):
    _, path = adapter_file
    model = build(checkpoint=base_ckpt)
    qkv = model.unet.attention_blocks[0].qkv
    base = qkv._parameters['weight'].detach().clone()
    model.load_lora(path, scale=1.0)
    one = qkv.weight.detach() - base
    model.load_lora(path, scale=0.5, name='half')
    both = qkv.weight.detach() - base
    torch.testing.assert_close(both, 1.5 * one, rtol=1e-5, atol=1e-7)
    model.unload_lora('style')
    torch.testing.assert_close(qkv.weight.detach() - base, 0.5 * one,
                               rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="named 'half' is already loaded"):
        model.load_lora(path, name='half')


def test_adapter_file_is_float16_with_adapter_keys_only(adapter_file):
    from safetensors import safe_open
    model, path = adapter_file
    with safe_open(path, framework='pt') as f:
        assert f.metadata()['format'] == lora.FORMAT
        keys = list(f.keys())
        assert {f.get_tensor(k).dtype for k in keys} == {torch.float16}
    assert len(keys) == 2 * len(lora.adapted_layers(model))
    assert all(k.endswith(('.lora_down', '.lora_up')) for k in keys)


def _rewrite(path, out, change):
    from safetensors.torch import load_file, save_file
    tensors = load_file(path)
    change(tensors)
    save_file(tensors, out, metadata=dict(format=lora.FORMAT, scale='1.0'))
    return out


def test_wrong_adapter_files_are_clear_errors(adapter_file, base_ckpt,
                                              tmp_path):
    _, path = adapter_file
    model = build(checkpoint=base_ckpt)
    layer = 'unet.in_blocks.1.1.qkv'
    missing = _rewrite(path, str(tmp_path / 'missing.safetensors'),
                       lambda t: t.pop(f'{layer}.lora_up'))
    with pytest.raises(ValueError, match=rf"missing.safetensors: layer "
                       rf"'{layer}' misses the key {layer}.lora_up"):
        model.load_lora(missing)
    shapes = _rewrite(path, str(tmp_path / 'shapes.safetensors'),
                      lambda t: t.update({f'{layer}.lora_down': torch.zeros(
                          2, 7, dtype=torch.float16)}))
    with pytest.raises(ValueError, match=rf"shapes.safetensors: layer "
                       rf"'{layer}'.*does not make its 96x32 weight"):
        model.load_lora(shapes)
    other = _rewrite(path, str(tmp_path / 'other.safetensors'),
                     lambda t: t.update({
                         'unet.blocks.9.lora_down':
                         t[f'{layer}.lora_down'].clone(),
                         'unet.blocks.9.lora_up':
                         t[f'{layer}.lora_up'].clone()}))
    with pytest.raises(ValueError, match=r"other.safetensors: layer "
                       r"'unet.blocks.9' is not a Linear/Conv layer of this "
                       r"model \(an adapter made for another model"):
        model.load_lora(other)
    with pytest.raises(ValueError, match='base.safetensors: not a GLIDE LoRA'):
        model.load_lora(base_ckpt)
    with pytest.raises(FileNotFoundError, match='nowhere.safetensors'):
        model.load_lora(str(tmp_path / 'nowhere.safetensors'))
    assert not lora.adapted_layers(model)  # nothing half-loaded


def test_an_adapter_for_a_wider_model_is_refused_naming_the_layer(
        adapter_file, tmp_path):
    _, path = adapter_file
    wide = build(unet=dict(base_channels=64))
    with pytest.raises(ValueError, match=r"style.safetensors: layer "
                       r"'unet.in_blocks.1.1.encoder_kv'.*does not make "
                       r"its 128x32"):
        wide.load_lora(path)


@pytest.mark.parametrize('config, match', [
    (dict(rank=2, alpha=4), r"unknown lora_config keys \['alpha'\]"),
    (dict(target_modules=['nope']), "entry 'nope' matches no layer"),
    (dict(target_modules=['in_blocks.1.0.conv_1.0']),
     "'in_blocks.1.0.conv_1.0', a GroupNorm32: adapters fit nn.Linear"),
    (dict(rank=100, target_modules=['qkv']),
     r"rank for 'in_blocks.1.1.qkv' must be an int in \[1, 32\]"),
    (dict(target_modules=[dict(target_module='qkv', size=2)]),
     'each lora_config.target_modules entry must be a str or dict'),
])
def test_bad_lora_config_is_a_clear_error(config, match):
    with pytest.raises(ValueError, match=match):
        build(config)


def test_mmagic_style_targets_regex_and_per_entry_rank():
    model = build(dict(rank=2, target_modules=[
        r'transformer\.resblocks\.\d+\.attn\.c_qkv',
        dict(target_module='qkv', rank=4, scale=2.0)]))
    layers = lora.adapted_layers(model)
    qkvs = {f'unet.{n}' for n, _ in model.unet.named_modules()
            if n.endswith('.qkv')}
    assert len(qkvs) == len(model.unet.attention_blocks)
    assert set(layers) == qkvs | {
        'unet.transformer.resblocks.0.attn.c_qkv',
        'unet.transformer.resblocks.1.attn.c_qkv'}
    qkv = layers['unet.mid_blocks.1.qkv'].lora['default']
    assert (qkv.rank, qkv.scale) == (4, 2.0)
    c_qkv = layers['unet.transformer.resblocks.0.attn.c_qkv'].lora['default']
    assert (c_qkv.rank, c_qkv.scale) == (2, 1.0)
    assert not lora.adapted_layers(model.unet_up)  # the trained stage only


def test_init_weights_writes_the_base_weights_of_adapted_layers():
    """mmagic's zero-init of the attention output (``constant_init`` on
    ``proj_out.weight``) reaches the base parameter, not a temporary."""
    model = randomize(build(LORA))
    model.init_weights()
    for block in model.unet.attention_blocks:
        assert lora.is_adapted(block.proj_out)
        assert not block.proj_out._parameters['weight'].any()


def test_deepcopy_keeps_adapters_and_class_is_restored_on_unload():
    from copy import deepcopy
    model = train_adapters(build(LORA))
    copy = deepcopy(model)  # what mmengine's EMA hook does
    assert torch.equal(unet_out(copy), unet_out(model))
    copy.unload_lora()
    qkv = copy.unet.attention_blocks[0].qkv
    assert type(qkv) is nn.Conv1d and not hasattr(qkv, 'lora')
