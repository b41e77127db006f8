"""tools/glide_sample.py: prompts to a PNG grid with its settings."""
import json
import os
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

    def build(cfg, checkpoint, device):
        seen.update(cfg=cfg, checkpoint=checkpoint)
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
     '--init-image and --mask go together'),
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
    assert 'WARNING: no --checkpoint: sampling glide_shapes-32-64.py with ' \
        'RANDOM weights' in err and 'absent.safetensors' in err
    demo = tmp_path / 'demo.safetensors'
    demo.write_bytes(b'')
    monkeypatch.setattr(glide_sample, 'DEMO_CHECKPOINT', str(demo))
    with pytest.raises(Stop):
        main(['a red circle', '--out', str(tmp_path / 'x.png')])
    assert no_model['checkpoint'] == str(demo)
    assert 'RANDOM' not in capsys.readouterr().err


def test_inpainting_keeps_the_white_mask_region(tmp_path):
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
