"""tools/convert_glide_checkpoint.py on the reference's tiny OpenAI weights
and on the shipped demo file."""
import pytest
import torch

from mmagic.apis import init_model
from tests.conftest import CONFIGS, ROOT, TEST_CONFIGS, load_case
from tests.reference import reference_inputs, reference_state_dict
from tools.convert_glide_checkpoint import main as convert

TINY = str(TEST_CONFIGS / 'glide_tiny_16-32.py')
TINY_INPAINT = str(TEST_CONFIGS / 'glide_tiny_16-32-inpaint.py')


def openai_file(case, folder):
    """A golden case's weights saved as an OpenAI checkpoint; with its
    state dict and stored tensors."""
    data = load_case(case)
    state = reference_state_dict(case)
    path = folder / f'{case}.pt'
    torch.save(state, path)
    return str(path), state, data


@pytest.mark.parametrize('inpaint', [False, True])
@pytest.mark.parametrize('ext', ['pth', 'safetensors'])
def test_openai_to_ours_to_openai(tmp_path, inpaint, ext, capsys):
    base_case, up_case = (('inpaint', 'upsample_inpaint') if inpaint else
                          ('base', 'upsample'))
    config = TINY_INPAINT if inpaint else TINY
    base_path, base_sd, base_data = openai_file(base_case, tmp_path)
    up_path, up_sd, up_data = openai_file(up_case, tmp_path)
    ours = str(tmp_path / f'glide.{ext}')
    convert(['--base', base_path, '--upsample', up_path, '--out', ours,
             '--config', config])
    assert 'reading' in capsys.readouterr().out  # progress messages

    # Our checkpoint loads strictly and reproduces the reference forwards
    # (in the config's channels-last layout: float32 sums in another order,
    # 1.3e-5 at most; see test_channels_last_forward_matches_reference).
    model = init_model(config, ours, device='cpu')
    for net, data in ((model.unet, base_data), (model.unet_up, up_data)):
        with torch.no_grad():
            out = net(data['forward.x'], data['forward.timesteps'],
                      data['forward.tokens'], data['forward.mask'].bool(),
                      **reference_inputs(data))
        assert (out - data['forward.output']).abs().max() <= 3e-5

    # And converts back bit-exactly.
    back = tmp_path / 'back'
    convert(['--to-openai', ours, '--out-dir', str(back), '--config', config])
    suffix = '_inpaint' if inpaint else ''
    for name, original in ((f'base{suffix}.pt', base_sd),
                           (f'upsample{suffix}.pt', up_sd)):
        again = torch.load(back / name, weights_only=True)
        assert sorted(again) == sorted(original)
        for k in original:
            assert again[k].dtype == original[k].dtype, k
            assert torch.equal(again[k], original[k]), k


def test_base_only_checkpoint(tmp_path):
    base_path, _, _ = openai_file('base', tmp_path)
    out = str(tmp_path / 'base.pth')
    convert(['--base', base_path, '--out', out, '--config', TINY])
    state = torch.load(out, weights_only=True)['state_dict']
    assert all(k.startswith('unet.') for k in state)


def test_wrong_files_are_clear_errors(tmp_path):
    base_path, _, _ = openai_file('base', tmp_path)
    up_path, up_sd, _ = openai_file('upsample', tmp_path)
    with pytest.raises(ValueError, match='pass it as --upsample'):
        convert(['--base', up_path, '--out', str(tmp_path / 'x.pth'),
                 '--config', TINY])
    inpaint_up, _, _ = openai_file('upsample_inpaint', tmp_path)
    with pytest.raises(ValueError, match='does not go with a base'):
        convert(['--base', base_path, '--upsample', inpaint_up, '--out',
                 str(tmp_path / 'x.pth'), '--config', TINY])
    # An unknown key is named.
    up_sd['input_blocks.99.0.weight'] = torch.zeros(1)
    bad = tmp_path / 'bad_up.pt'
    torch.save(up_sd, bad)
    with pytest.raises(KeyError, match=r'unet_up\.in_blocks\.99\.0\.weight'):
        convert(['--base', base_path, '--upsample', str(bad), '--out',
                 str(tmp_path / 'x.pth'), '--config', TINY])
    # The full-size default config rejects tiny weights with shapes named.
    with pytest.raises(KeyError, match='shape mismatches'):
        convert(['--base', base_path, '--out', str(tmp_path / 'x.pth')])


def test_clip_checkpoints_convert_both_ways(tmp_path):
    clip = reference_state_dict('clip')
    paths = {}
    for part, name in (('text_encoder', 'clip_text_enc.pt'),
                       ('image_encoder', 'clip_image_enc.pt')):
        prefix = f'{part}.'
        paths[part] = tmp_path / name
        torch.save({k[len(prefix):]: v for k, v in clip.items()
                    if k.startswith(prefix)}, paths[part])
    base_path, _, _ = openai_file('base', tmp_path)
    config = str(TEST_CONFIGS / 'glide_tiny_16-32-clip.py')
    out = str(tmp_path / 'glide-clip.safetensors')
    convert(['--base', base_path, '--clip-text', str(paths['text_encoder']),
             '--clip-image', str(paths['image_encoder']), '--out', out,
             '--config', config])
    from mmengine import Config
    cfg = Config.fromfile(config)
    cfg.model.pop('unet_up')
    cfg.model.pop('diffusion_scheduler_up')
    cfg.model.pop('upsample_temp')
    model = init_model(cfg, out, device='cpu')  # strict
    assert model.classifier is not None
    back = tmp_path / 'back'
    convert(['--to-openai', out, '--out-dir', str(back), '--config', config])
    for part, path in paths.items():
        original = torch.load(path, weights_only=True)
        again = torch.load(back / path.name, weights_only=True)
        assert sorted(again) == sorted(original)
        assert all(torch.equal(again[k], original[k]) for k in original)


def test_to_openai_without_config_says_to_pass_one(tmp_path):
    """The tiny weights checked against the default full-size config: a
    readable message that names --config first."""
    base_path, _, _ = openai_file('base', tmp_path)
    ours = str(tmp_path / 'tiny.pth')
    convert(['--base', base_path, '--out', ours, '--config', TINY])
    with pytest.raises(KeyError) as err:
        convert(['--to-openai', ours, '--out-dir', str(tmp_path / 'back')])
    text = str(err.value)
    assert 'pass --config' in text.splitlines()[0]
    assert '\\n' not in text and 'shape mismatches' in text
    assert not (tmp_path / 'back').exists()  # nothing written


@pytest.mark.parametrize('extra', ['classifier.foo', 'foo', 'unet.foo'])
def test_to_openai_rejects_unknown_keys_before_writing(tmp_path, extra):
    """What init_model would reject, the converter rejects too, before it
    writes any file."""
    from projects.glide.models.checkpoint import save_state_dict
    base_path, _, _ = openai_file('base', tmp_path)
    ours = str(tmp_path / 'tiny.safetensors')
    convert(['--base', base_path, '--out', ours, '--config', TINY])
    from safetensors.torch import load_file
    state = load_file(ours)
    state[extra] = torch.zeros(1)
    save_state_dict(state, ours)
    with pytest.raises((KeyError, ValueError), match=extra.split('.')[-1]):
        convert(['--to-openai', ours, '--out-dir', str(tmp_path / 'back'),
                 '--config', TINY])
    assert not (tmp_path / 'back').exists()
    with pytest.raises((KeyError, ValueError)):
        init_model(TINY, ours, device='cpu')


def test_bad_out_name_fails_before_reading(tmp_path):
    with pytest.raises(SystemExit):
        convert(['--base', str(tmp_path / 'never_read.pt'), '--out',
                 str(tmp_path / 'noext')])


def test_to_openai_on_an_openai_file_says_so(tmp_path):
    base_path, _, _ = openai_file('base', tmp_path)
    with pytest.raises(KeyError, match='already an OpenAI-format checkpoint'):
        convert(['--to-openai', base_path, '--out-dir', str(tmp_path / 'b'),
                 '--config', TINY])


DEMO = ROOT / 'checkpoints' / 'glide_shapes-32.safetensors'
CASCADE = str(CONFIGS / 'glide_upsampler_2xb16-1k_shapes-32-64.py')
CLIP = str(CONFIGS / 'glide_noised-clip_1xb64-2k_shapes-32x32.py')
#: OpenAI file -> (our key prefix, whether UNet keys are renamed).
DEMO_FILES = {'base.pt': ('unet.', True), 'upsample.pt': ('unet_up.', True),
              'clip_text_enc.pt': ('classifier.text_encoder.', False),
              'clip_image_enc.pt': ('classifier.image_encoder.', False)}


def assert_openai_files_hold(folder, state, files):
    """Each OpenAI file of ``folder`` holds exactly its network's tensors of
    ``state`` (``files``: a subset of :data:`DEMO_FILES`)."""
    from projects.glide.models.checkpoint import openai_to_mmagic
    assert sorted(p.name for p in folder.iterdir()) == sorted(files)
    for name in files:
        prefix, unet = DEMO_FILES[name]
        written = torch.load(folder / name, weights_only=True)
        ours = (openai_to_mmagic(written, prefix) if unet else
                {prefix + k: v for k, v in written.items()})
        assert sorted(ours) == sorted(k for k in state
                                      if k.startswith(prefix)), name
        for k, v in ours.items():
            assert v.dtype == state[k].dtype and torch.equal(v, state[k]), k


def test_the_shipped_demo_file_converts_network_by_network(tmp_path):
    """The demo file holds three networks and no config has all three: with
    the two configs that have them, each is checked against the first that
    has it and written as its OpenAI files; without --config each is
    checked against a shipped config that fits it."""
    from projects.glide.models.checkpoint import read_state_dict
    state = read_state_dict(str(DEMO))
    out = tmp_path / 'two_configs'
    convert(['--to-openai', str(DEMO), '--out-dir', str(out),
             '--config', CASCADE, CLIP])
    assert_openai_files_hold(out, state, DEMO_FILES)
    out = tmp_path / 'found'
    convert(['--to-openai', str(DEMO), '--out-dir', str(out)])
    assert_openai_files_hold(out, state, DEMO_FILES)


def test_a_network_no_config_has_is_named(tmp_path):
    """Before anything is written: the missing network, its keys, the
    shipped config that fits it, and --networks to leave it out."""
    from projects.glide.models.checkpoint import read_state_dict
    out = tmp_path / 'openai'
    with pytest.raises(ValueError) as err:
        convert(['--to-openai', str(DEMO), '--out-dir', str(out),
                 '--config', CLIP])
    text = str(err.value)
    assert 'holds networks that --config' in text
    assert 'upsample: the upsampler (unet_up.*, 305 tensors), but no ' \
        'config has model.unet_up' in text
    assert 'glide_upsampler_2xb16-1k_shapes-32-64.py' in text
    assert '--networks base clip' in text
    assert not out.exists()
    state = read_state_dict(str(DEMO))
    convert(['--to-openai', str(DEMO), '--out-dir', str(out), '--config',
             CLIP, '--networks', 'base', 'clip'])
    assert_openai_files_hold(out, state, ['base.pt', 'clip_text_enc.pt',
                                          'clip_image_enc.pt'])
    from projects.glide.models.checkpoint import save_state_dict
    base_only = str(tmp_path / 'base_only.safetensors')
    save_state_dict({k: v for k, v in state.items() if k.startswith('unet.')},
                    base_only)
    with pytest.raises(ValueError, match='--networks upsample: .* holds no '
                       'such network; it holds base$'):
        convert(['--to-openai', base_only, '--out-dir', str(tmp_path / 'x'),
                 '--networks', 'upsample'])
