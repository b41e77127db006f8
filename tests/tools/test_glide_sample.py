"""tools/glide_sample.py: prompts to a PNG grid with its settings."""
import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import tools.glide_sample as glide_sample
from tests.conftest import ROOT, TEST_CONFIGS
from tools.glide_sample import main

TINY = str(TEST_CONFIGS / 'glide_tiny_16-32.py')
TINY_INPAINT = str(TEST_CONFIGS / 'glide_tiny_16-32-inpaint.py')
TINY_BASE_ONLY = str(TEST_CONFIGS / 'glide_tiny_train-16.py')


class Stop(Exception):
    """Raised instead of building the model."""


@pytest.fixture
def no_model(monkeypatch):
    """Record what would be built, and stop there (no sampling)."""
    seen = {}

    def build(cfg, checkpoint, device, **kwargs):
        seen.update(cfg=cfg, checkpoint=checkpoint, **kwargs)
        raise Stop

    monkeypatch.setattr(glide_sample, 'build_model', build)
    return seen


def test_writes_png_grid_with_settings(tmp_path, capsys):
    out = tmp_path / 'grid.png'
    main(['a red cube', 'a blue ball', '--config', TINY, '--out', str(out),
          '--batch-size', '2', '--steps', '4', '--sampler', 'ddim', '--seed',
          '5', '--negative-prompt', 'blurry', '--zoom', '2', '--no-progress'])
    image = Image.open(out)
    side = 2 * (2 * 32 + 3 * 2)  # a 2x2 grid with 2 px padding, zoomed 2x
    assert image.size == (side, side)
    pixels = np.asarray(image.convert('RGB'))
    assert (pixels[0::2, 0::2] == pixels[1::2, 1::2]).all()  # repeated
    settings = json.loads(image.text['glide'])
    assert settings['prompts'] == ['a red cube', 'a blue ball']
    assert settings['seed'] == 5 and settings['sampler'] == 'GlideDDIMScheduler'
    # The steps used, the defaults included, and the upsampler's sampler.
    assert settings['steps'] == 4 and settings['num_steps'] == 4
    assert settings['sampler_up'] == 'GlideDDIMScheduler'
    assert settings['steps_up'] == 'fast27' and settings['num_steps_up'] == 27
    assert settings['guidance'] == 3.0 and settings['negative_prompt'] == \
        'blurry'
    assert settings['checkpoint'] == 'none (random weights)'
    assert settings['dtype'] == 'float32' and settings['threads'] >= 1
    assert settings['zoom'] == 2
    assert 'RANDOM weights' in capsys.readouterr().err


@pytest.mark.parametrize('out,match', [
    ('noext', 'has no file extension; use .png'),
    ('x.nosuchformat', 'cannot write .nosuchformat images'),
])
def test_bad_output_fails_before_sampling(tmp_path, no_model, out, match):
    with pytest.raises(SystemExit, match=match):
        main(['a cat', '--config', TINY, '--out', str(tmp_path / out)])
    assert not no_model  # stopped before the model was built


def test_jpeg_output_says_it_has_no_metadata(tmp_path, no_model, capsys):
    with pytest.raises(Stop):
        main(['a cat', '--config', TINY, '--out', str(tmp_path / 'x.jpg')])
    assert 'JPEG files cannot hold the settings metadata' in \
        capsys.readouterr().err


@pytest.mark.parametrize('args,match', [
    (['--config', TINY_BASE_ONLY, '--steps-up', '5'],
     '--steps-up: glide_tiny_train-16.py has no upsampler'),
    (['--config', TINY, '--init-image', 'a.png', '--mask', 'm.png'],
     '--init-image/--mask need an inpainting config'),
    (['--config', TINY_INPAINT, '--init-image', 'a.png'],
     '--init-image goes with --mask .inpainting. or with --strength'),
    (['--config', TINY_INPAINT, '--mask', 'm.png'],
     '--mask needs --init-image'),
    (['--config', TINY, '--strength', '0.5'],
     '--strength needs --init-image'),
    (['--config', TINY_INPAINT, '--init-image', 'a.png', '--strength', '.5'],
     '--strength: glide_tiny_16-32-inpaint.py is an inpainting config'),
    (['--config', TINY, '--lora', 'none.safetensors:0.5'],
     '--lora none.safetensors: no such file'),
    (['--config', TINY_INPAINT, '--init-image', 'none.png', '--mask',
      'none.png'], '--init-image none.png: no such file'),
    (['--config', TINY, '--classifier-scale', '2'],
     '--classifier-scale: glide_tiny_16-32.py has no CLIP guide'),
    (['--config', TINY, '--steps', 'ddimx'],
     r"--steps must be an int in \[1, 1000\] or a respacing string .*"
     "'ddimx'"),
    (['--config', TINY, '--checkpoint', 'none.pth'],
     '--checkpoint none.pth: no such file'),
])
def test_flags_that_do_not_fit_the_config_fail_early(tmp_path, no_model,
                                                     args, match):
    with pytest.raises(SystemExit, match=match):
        main(['a cat', '--out', str(tmp_path / 'x.png'), *args])
    assert not no_model


@pytest.mark.parametrize('flag,value', [('--guidance', '-1'),
                                        ('--strength', '0'),
                                        ('--strength', '1.5'),
                                        ('--lora', 'a.safetensors:nan'),
                                        ('--batch-size', '0'),
                                        ('--seed', str(2**64))])
def test_numeric_flags_are_range_checked(tmp_path, flag, value, capsys):
    with pytest.raises(SystemExit):
        main(['a cat', flag, value, '--out', str(tmp_path / 'x.png')])
    assert flag in capsys.readouterr().err


def test_default_config_is_the_demo_model(tmp_path, no_model, monkeypatch,
                                          capsys):
    """The shapes demo config, with its checkpoint when it exists; a loud
    warning naming --checkpoint when it does not."""
    monkeypatch.setattr(glide_sample, 'DEMO_CHECKPOINT',
                        str(tmp_path / 'absent.safetensors'))
    with pytest.raises(Stop):
        main(['a red circle', '--out', str(tmp_path / 'x.png')])
    assert no_model['checkpoint'] is None
    assert no_model['cfg'].filename == glide_sample.DEMO_CONFIG
    err = capsys.readouterr().err
    demo_name = os.path.basename(glide_sample.DEMO_CONFIG)
    assert f'WARNING: no --checkpoint: sampling {demo_name} with RANDOM ' \
        'weights' in err and 'absent.safetensors' in err
    demo = tmp_path / 'demo.safetensors'
    demo.write_bytes(b'')
    monkeypatch.setattr(glide_sample, 'DEMO_CHECKPOINT', str(demo))
    with pytest.raises(Stop):
        main(['a red circle', '--out', str(tmp_path / 'x.png')])
    assert no_model['checkpoint'] == str(demo)
    assert 'RANDOM' not in capsys.readouterr().err


def test_inpainting_keeps_the_white_mask_region(tmp_path, capsys):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / 'image.png')
    mask = np.full((32, 32), 255, np.uint8)
    mask[8:24, 8:24] = 0  # generate the centre
    Image.fromarray(mask).save(tmp_path / 'mask.png')
    out = tmp_path / 'inpainted.png'
    main(['a cat', '--config', TINY_INPAINT, '--out', str(out), '--steps',
          '3', '--steps-up', '3', '--init-image', str(tmp_path / 'image.png'),
          '--mask', str(tmp_path / 'mask.png'), '--no-progress'])
    image = Image.open(out)
    sample = np.asarray(image.convert('RGB')).astype(int)  # one: no padding
    assert sample.shape == (32, 32, 3)
    keep = mask == 255
    assert np.abs(sample - pixels)[keep].max() <= 1  # 8-bit rounding
    assert np.abs(sample - pixels)[~keep].mean() > 10
    settings = json.loads(image.text['glide'])
    assert settings['guidance'] == 5.0  # the inpainting recipe's
    assert settings['sampler_up'] == 'GlideAncestralScheduler'
    assert settings['mask'] == str(tmp_path / 'mask.png')
    assert f'wrote {out}: 1 sample of 32x32 in' in capsys.readouterr().out


@pytest.fixture(scope='module')
def adapter(tmp_path_factory):
    """An adapter file for the tiny config's base UNet (random ``up``
    matrices, so it changes the output)."""
    from tests.models.test_lora import LORA, build, train_adapters
    path = tmp_path_factory.mktemp('adapter') / 'style.safetensors'
    train_adapters(build(LORA)).save_lora(str(path))
    return str(path)


def test_editing_keeps_the_scene_at_low_strength_and_records_it(tmp_path):
    """``--init-image X --strength S`` is SDEdit on the demo cascade: a
    red circle re-prompted as blue at strength 0.6 keeps its place and size
    and turns blue; the strength is in the settings."""
    from projects.glide.shapes.judge import judge_image
    from projects.glide.shapes.scenes import render
    scene = dict(shape='circle', colour='red', size='large',
                 position='top left', background='black')
    Image.fromarray(render(scene, 64)).save(tmp_path / 'red.png')
    out = tmp_path / 'edit.png'
    main(['a large blue circle in the top left corner, black background',
          '--out', str(out), '--steps', '10', '--steps-up', '5',
          '--init-image', str(tmp_path / 'red.png'), '--strength', '0.6',
          '--no-progress'])
    image = Image.open(out)
    judged = judge_image(np.asarray(image.convert('RGB')))
    assert {k: judged[k] for k in scene} == dict(scene, colour='blue'), \
        judged
    settings = json.loads(image.text['glide'])
    assert settings['strength'] == 0.6 and 'mask' not in settings
    assert settings['init_image'] == str(tmp_path / 'red.png')


@pytest.fixture(scope='module')
def base_only_adapter(tmp_path_factory):
    """Random weights for the tiny base-only config (no saturated pixels)
    and an adapter file for them."""
    from mmengine import Config

    from mmagic.apis import init_model
    from projects.glide.models.checkpoint import save_state_dict
    from tests.models.test_glide import randomize
    from tests.models.test_lora import LORA, train_adapters
    folder = tmp_path_factory.mktemp('base_only')
    cfg = Config.fromfile(TINY_BASE_ONLY)
    save_state_dict(randomize(init_model(cfg, device='cpu')).state_dict(),
                    str(folder / 'base.safetensors'))
    cfg.model.lora_config = LORA
    model = init_model(cfg, str(folder / 'base.safetensors'), device='cpu')
    train_adapters(model).save_lora(str(folder / 'style.safetensors'))
    return str(folder / 'base.safetensors'), str(folder / 'style.safetensors')


def test_lora_adapters_change_the_samples_and_are_recorded(
        tmp_path, base_only_adapter):
    checkpoint, adapter = base_only_adapter
    common = ['a cat', '--config', TINY_BASE_ONLY, '--checkpoint',
              checkpoint, '--steps', '3', '--no-progress']
    main(common + ['--out', str(tmp_path / 'plain.png')])
    main(common + ['--out', str(tmp_path / 'lora.png'), '--lora',
                   f'{adapter}:0.5'])
    plain, adapted = (Image.open(tmp_path / f'{name}.png')
                      for name in ('plain', 'lora'))
    difference = np.abs(np.asarray(plain, float) - np.asarray(adapted))
    assert difference.mean() > 1, difference.mean()
    assert json.loads(adapted.text['glide'])['lora'] == [
        dict(path=adapter, scale=0.5)]
    assert 'lora' not in json.loads(plain.text['glide'])


def test_an_adapter_that_does_not_fit_is_a_clear_error(tmp_path, adapter):
    """An adapter whose first layer has another input width (made for
    another model) stops the tool with the file and the layer named."""
    from safetensors import safe_open
    from safetensors.torch import save_file
    with safe_open(adapter, framework='pt') as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    key = next(k for k in tensors if k.endswith('.lora_down'))
    down = tensors[key]
    tensors[key] = down.new_zeros(down.shape[0], down.shape[1] + 8)
    other = str(tmp_path / 'other.safetensors')
    save_file(tensors, other, metadata=meta)
    layer = key[:-len('.lora_down')]
    with pytest.raises(SystemExit, match=rf"--lora: .*other.safetensors: "
                       rf"layer '{layer}': .* does not make its"):
        main(['a cat', '--config', TINY, '--out', str(tmp_path / 'x.png'),
              '--lora', other, '--no-progress'])


def test_command_line_is_quiet_and_says_its_threads(tmp_path):
    """No third-party warnings; the thread count is printed."""
    out = tmp_path / 'x.png'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env.pop('PYTHONWARNINGS', None)
    done = subprocess.run(
        [sys.executable, str(ROOT / 'tools' / 'glide_sample.py'), 'a cat',
         '--config', TINY, '--out', str(out), '--steps', '2', '--steps-up',
         '2', '--no-progress'], env=env, capture_output=True, text=True,
        timeout=300, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-3000:]
    assert '[glide] 1 CPU thread (OMP_NUM_THREADS=1' in done.stdout
    assert 'Warning' not in done.stderr, done.stderr
    assert out.exists()


def test_a_non_square_init_image_is_refused(tmp_path, no_model):
    """The web page's rule: a non-square image is neither stretched nor
    cropped, but refused before the model is built."""
    Image.new('RGB', (200, 120)).save(tmp_path / 'wide.png')
    Image.new('L', (32, 32), 255).save(tmp_path / 'mask.png')
    with pytest.raises(SystemExit, match='--init-image .*wide.png is '
                       '200x120: the model needs a square image'):
        main(['a cat', '--config', TINY_INPAINT, '--out',
              str(tmp_path / 'x.png'), '--init-image',
              str(tmp_path / 'wide.png'), '--mask',
              str(tmp_path / 'mask.png')])
    assert not no_model
    with pytest.raises(SystemExit, match='--mask .*wide.png is 200x120'):
        main(['a cat', '--config', TINY_INPAINT, '--out',
              str(tmp_path / 'x.png'), '--init-image',
              str(tmp_path / 'mask.png'), '--mask',
              str(tmp_path / 'wide.png')])


def test_an_unused_negative_prompt_is_not_recorded(tmp_path, capsys):
    """Guidance 1 samples the prompt alone: the negative prompt changes
    nothing, is said to be unused, and is not in the metadata."""
    common = ['a cat', '--config', TINY, '--steps', '2', '--steps-up', '2',
              '--guidance', '1', '--no-progress']
    main(common + ['--out', str(tmp_path / 'plain.png')])
    main(common + ['--out', str(tmp_path / 'negative.png'),
                   '--negative-prompt', 'blurry'])
    assert '--negative-prompt is not used with guidance 1' in \
        capsys.readouterr().err
    plain, negative = (Image.open(tmp_path / f'{name}.png')
                       for name in ('plain', 'negative'))
    assert np.array_equal(np.asarray(plain), np.asarray(negative))
    settings = json.loads(negative.text['glide'])
    assert settings['guidance'] == 1.0
    assert 'negative_prompt' not in settings
    assert 'init_image' not in settings and 'mask' not in settings
    assert 'classifier_scale' not in settings  # no CLIP guide


def test_clip_scale_0_is_not_recorded(tmp_path):
    out = tmp_path / 'x.png'
    main(['a cat', '--config', str(TEST_CONFIGS / 'glide_tiny_16-32-clip.py'),
          '--steps', '2', '--steps-up', '2', '--classifier-scale', '0',
          '--no-progress', '--out', str(out)])
    assert 'classifier_scale' not in json.loads(Image.open(out).text['glide'])


def _vocabulary_config(tmp_path):
    path = tmp_path / 'closed.py'
    path.write_text(f'_base_ = [{TINY!r}]\nprompt_vocabulary = \'shapes\'\n')
    return str(path)


def test_words_outside_a_closed_vocabulary_are_named(tmp_path, no_model,
                                                     capsys):
    config = _vocabulary_config(tmp_path)
    with pytest.raises(Stop):
        main(['a dog', 'a small red circle at the top left on a black '
              'background', 'a grey Dog, big', '--config', config, '--out',
              str(tmp_path / 'x.png')])
    warnings = [line for line in capsys.readouterr().err.splitlines()
                if 'has words it has never seen' in line]
    assert len(warnings) == 2
    assert warnings[0].startswith('WARNING: closed.py knows only the words '
                                  'of its shapes captions; "a dog"')
    assert warnings[0].endswith('never seen: dog. They will not show in the '
                                'image.')
    assert 'never seen: grey, dog, big.' in warnings[1]


def test_a_config_without_a_vocabulary_takes_any_word(tmp_path, no_model,
                                                      capsys):
    with pytest.raises(Stop):
        main(['an oil painting of a corgi', '--config', TINY, '--out',
              str(tmp_path / 'x.png')])
    assert 'never seen' not in capsys.readouterr().err


def test_separator_splits_prompts():
    args = glide_sample.parse_args(['a red circle; ; a blue square ;',
                                    'a cat', '--separator', ';'])
    assert args.prompts == ['a red circle', 'a blue square', 'a cat']
    assert glide_sample.parse_args(['a; b']).prompts == ['a; b']


def _make_demo_argv(*variables):
    """The arguments ``make demo`` passes to glide_sample.py (make -n)."""
    done = subprocess.run(['make', '-n', 'demo', *variables], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    command = done.stdout.replace('\\\n', ' ')
    line = [c for c in command.splitlines() if 'glide_sample.py' in c][0]
    argv = shlex.split(line)
    return argv[argv.index('tools/glide_sample.py') + 1:]


def test_make_demo_takes_one_plain_string_as_one_prompt():
    prompt = "a small red circle at the top left on a white background"
    args = glide_sample.parse_args(_make_demo_argv(f'PROMPTS={prompt}'))
    assert args.prompts == [prompt]
    quoted = "the dog's ball"  # quotes survive the shell
    assert glide_sample.parse_args(_make_demo_argv(
        f'PROMPTS={quoted}; a cat')).prompts == [quoted, 'a cat']
    # the older form, shell-quoted prompts, still works
    assert glide_sample.parse_args(_make_demo_argv(
        'PROMPTS="a red circle" "a cat"')).prompts == ['a red circle', 'a cat']
    default = glide_sample.parse_args(_make_demo_argv())
    assert len(default.prompts) == 4 and default.batch_size == 4
    assert default.prompts[0] == ('a large red circle in the top left '
                                  'corner, black background')


def test_help_keeps_the_examples_and_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        glide_sample.parse_args(['--help'])
    text = capsys.readouterr().out
    # each example line on its own line, its continuation kept
    assert '    python tools/glide_sample.py "an oil painting of a corgi" ' \
        '\\\n        --config' in text
    flat = ' '.join(text.split())
    for option, default in (('--batch-size BATCH_SIZE', '1'),
                            ('--zoom ZOOM', '1'), ('--seed SEED', '0'),
                            ('--out OUT', 'outputs/glide.png')):
        start = flat.rindex(option)  # the options section, not the usage
        help_text = flat[start:flat.index(' --', start + len(option))]
        assert f'(default: {default})' in help_text, help_text
    assert '(default: None)' not in flat


def test_grid_lines_show_on_black_white_and_gray_images():
    import torch
    samples = torch.tensor([-1.0, 1.0, 0.0, -1.0]).view(4, 1, 1, 1).expand(
        4, 3, 4, 4)
    grid = np.asarray(glide_sample.to_grid(samples, per_row=2, zoom=1))
    assert grid.shape == (2 + 2 * (4 + 2), 2 + 2 * (4 + 2), 3)
    line = np.round(np.array(glide_sample.GRID_RGB) * 255)
    assert (grid[0] == line).all() and (grid[:, 6] == line).all()
    assert (grid[2:6, 2:6] == 0).all() and (grid[2:6, 8:12] == 255).all()
    for colour in (0, 255, 128):  # black, white, gray backgrounds
        assert np.abs(line - colour).max() > 40
