"""tools/convert_glide_checkpoint.py on the reference's tiny OpenAI weights."""
import pytest
import torch

from mmagic.apis import init_model
from tests.conftest import CONFIGS, load_case
from tests.reference import reference_inputs
from tools.convert_glide_checkpoint import main as convert

TINY = str(CONFIGS / 'glide_tiny_16-32.py')
TINY_INPAINT = str(CONFIGS / 'glide_tiny_16-32-inpaint.py')


def openai_file(case, folder):
    data = load_case(case)
    state = {k[len('state_dict.'):]: v for k, v in data.items()
             if k.startswith('state_dict.')}
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

    # Our checkpoint loads strictly and reproduces the reference forwards.
    model = init_model(config, ours, device='cpu')
    for net, data in ((model.unet, base_data), (model.unet_up, up_data)):
        with torch.no_grad():
            out = net(data['forward.x'], data['forward.timesteps'],
                      data['forward.tokens'], data['forward.mask'].bool(),
                      **reference_inputs(data))
        assert (out - data['forward.output']).abs().max() <= 1e-5

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
    from tests.conftest import reference_path
    from safetensors.torch import load_file
    clip = load_file(str(reference_path('clip_tiny.safetensors')))
    paths = {}
    for part, name in (('text_encoder', 'clip_text_enc.pt'),
                       ('image_encoder', 'clip_image_enc.pt')):
        prefix = f'state_dict.{part}.'
        paths[part] = tmp_path / name
        torch.save({k[len(prefix):]: v for k, v in clip.items()
                    if k.startswith(prefix)}, paths[part])
    base_path, _, _ = openai_file('base', tmp_path)
    config = str(CONFIGS / 'glide_tiny_16-32-clip.py')
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
