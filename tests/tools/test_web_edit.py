"""tools/web_demo.py: the Edit tab's worker (image to image), --lora, and
the command line (launch mocked)."""
import gradio as gr
import numpy as np
import pytest
from PIL import Image

from projects.glide.models import lora
from tests.conftest import TEST_CONFIGS
from tests.models.test_glide import randomize
from tests.tools import test_web_demo as web
from tests.tools.test_web_demo import (GOOD, TINY, fast_config,
                                       settings_of, with_)
from tools import web_demo

demo, inpaint_demo = web.demo, web.inpaint_demo  # the fixtures

TINY_BASE = TEST_CONFIGS / 'glide_tiny_train-16.py'  # 16 px, no upsampler


@pytest.fixture(scope='module')
def base_demo(tmp_path_factory):
    """The tiny 16 px base model, every weight drawn (random weights give
    noise, but not zero: the edits are not trivially the input)."""
    folder = tmp_path_factory.mktemp('web-edit')
    demo = web_demo.WebDemo(str(TINY_BASE), out_dir=str(folder / 'out'))
    randomize(demo.model)
    return demo


def square_picture(path, size=16):
    """A red square on gray, as a PNG file; returns the pixels."""
    pixels = np.full((size, size, 3), 64, np.uint8)
    pixels[size // 4:3 * size // 4, size // 4:3 * size // 4] = (230, 20, 20)
    Image.fromarray(pixels).save(path)
    return pixels.astype(np.int32)


def test_a_small_strength_keeps_the_layout_and_strength_one_changes_more(
        base_demo, tmp_path):
    picture = square_picture(tmp_path / 'in.png')
    distances, values = {}, with_(5, 5)  # 5 steps; 2 of them at 0.3
    values[2], values[3] = 1, 1.0  # one image, unguided: one pass a step
    for strength in (0.3, 1.0):
        paths, files, seed, status = base_demo.edit(
            str(tmp_path / 'in.png'), strength, *values)
        assert paths == files and len(paths) == 1 and seed == 7
        assert status.startswith('1 image in')
        settings = settings_of(paths[0])
        assert settings['edited'] and settings['strength'] == strength
        assert not settings['inpainted'] and settings['prompt'] == GOOD[0]
        out = np.asarray(Image.open(paths[0]), dtype=np.int32)
        assert out.shape == picture.shape
        distances[strength] = np.abs(out - picture).mean()
        if strength == 0.3:  # the red square is still there, on gray
            red = out[..., 0] - out[..., 1]  # 210 in the square, 0 outside
            square = np.zeros(red.shape, bool)
            square[4:12, 4:12] = True
            print('red - green, square / outside:', red[square].mean(),
                  red[~square].mean())
            assert red[square].mean() > red[~square].mean() + 100
    print('mean distance to the input:', distances)
    assert distances[0.3] < distances[1.0] / 2, distances


def test_an_edit_counts_only_the_steps_it_runs(base_demo, tmp_path):
    square_picture(tmp_path / 'in.png')
    lines, values = [], with_(5, 10)
    values[2] = 1
    base_demo.edit(str(tmp_path / 'in.png'), 0.3, *values,
                   progress=lines.append)
    # Of the 10 steps over T, those at or below 0.3 T.
    timesteps = base_demo.model.diffusion_scheduler.timesteps
    count = len(timesteps)
    assert 1 < count < 10 and int(timesteps.max()) <= 300
    assert [line.split(',')[0] for line in lines] == [
        f'Base model 16x16: step {i} of {count}' for i in
        range(1, count + 1)]


@pytest.mark.parametrize('strength, message', [
    (0, 'Strength must be a number in [0.05, 1], got 0'),
    (0.01, 'Strength must be a number in [0.05, 1], got 0.01'),
    (1.5, 'Strength must be a number in [0.05, 1], got 1.5'),
    (float('nan'), 'Strength must be a number in [0.05, 1], got nan'),
    (None, 'Strength must be a number in [0.05, 1], got None'),
])
def test_a_bad_strength_is_named_with_its_range(demo, tmp_path, strength,
                                                message):
    square_picture(tmp_path / 'in.png', 32)
    with pytest.raises(gr.Error, match=None) as err:
        demo.edit(str(tmp_path / 'in.png'), strength, *GOOD)
    assert message in err.value.message and not err.value.print_exception


def test_no_image_or_an_inpainting_model_is_refused(demo, inpaint_demo):
    with pytest.raises(gr.Error, match=None) as err:
        demo.edit(None, 0.6, *GOOD)
    assert err.value.message == ('No image to edit: upload an image (a '
                                 'square one; it is resized to 32x32).')
    with pytest.raises(gr.Error, match=None) as err:
        inpaint_demo.edit(np.zeros((32, 32, 3), np.uint8), 0.6, *GOOD)
    assert 'is an inpainting model: editing needs a text to image' in \
        err.value.message


def test_the_page_streams_an_edit(demo):
    *steps, (paths, _, _, status) = demo.page_edit(
        np.full((40, 40, 3), 90, np.uint8), 0.5, *GOOD)
    assert steps[0][3].startswith('Base model 16x16: step 1 of ')
    assert len(paths) == 2 and status.startswith('2 images in')
    assert settings_of(paths[0])['strength'] == 0.5


# ------------------------------------------------------- the command line
def make_adapter(path, seed):
    """An adapter file of the tiny model (random ``up``: not the
    identity)."""
    from tests.models.test_lora import LORA, build, train_adapters
    train_adapters(build(LORA), seed).save_lora(str(path))
    return str(path)


@pytest.fixture(scope='module')
def adapters(tmp_path_factory):
    folder = tmp_path_factory.mktemp('adapters')
    return [make_adapter(folder / f'{name}.safetensors', seed)
            for seed, name in enumerate(('style', 'ink'))]


@pytest.fixture
def launched(monkeypatch):
    """main()'s page and launch arguments, launch mocked."""
    calls = []

    def launch(page, **kwargs):
        calls.append((page, kwargs))

    monkeypatch.setattr(gr.Blocks, 'launch', launch)
    return calls


def test_lora_options_load_each_adapter_and_the_page_shows_them(
        adapters, launched, tmp_path, capsys):
    config = fast_config(tmp_path, TINY)
    style, ink = adapters
    assert web_demo.lora_spec(f'{ink}:0.5') == (ink, 0.5)
    assert web_demo.lora_spec('C:/a:b.safetensors') == ('C:/a:b.safetensors',
                                                        1.0)
    web_demo.main([config, '--lora', style, '--lora', f'{ink}:0.5',
                   '--out-dir', str(tmp_path / 'out'), '--host', '0.0.0.0'])
    (page, kwargs), = launched
    assert kwargs['allowed_paths'] == [str(tmp_path / 'out')]
    assert kwargs['server_name'] == '0.0.0.0' and not kwargs['share']
    err = capsys.readouterr().err
    assert 'WARNING: serving on 0.0.0.0' in err and 'anyone' in err
    texts = [block.value for block in page.blocks.values()
             if isinstance(block, gr.Markdown)]
    assert 'LoRA adapters: `style.safetensors` (scale 1), ' \
        '`ink.safetensors` (scale 0.5).' in texts
    demo = next(f.fn.__self__ for f in page.fns.values()
                if hasattr(f.fn, '__self__'))  # the worker of the events
    qkv = demo.model.unet.attention_blocks[0].qkv
    assert sorted(qkv.lora) == ['ink', 'style']
    assert [a.scale for a in qkv.lora.values()] == [1.0, 0.5]
    settings = settings_of(demo.generate(*with_(2, 1))[0][0])
    assert settings['lora'] == [dict(file='style.safetensors', scale=1.0),
                                dict(file='ink.safetensors', scale=0.5)]


def test_only_a_page_served_beyond_this_machine_warns():
    assert web_demo.exposure_warning('127.0.0.1', 7860) == ''
    assert 'anyone' in web_demo.exposure_warning('192.168.1.5', 7860)


@pytest.mark.parametrize('make, message', [
    (lambda folder, _: str(folder / 'nowhere.safetensors'),
     "--lora: adapter file not found: '"),
    (lambda folder, _: str(folder / 'base.safetensors'),
     'base.safetensors: not a .safetensors adapter file'),
    (lambda folder, adapters: adapters[0] + ' twice',
     "named 'style' is already loaded"),
])
def test_a_bad_adapter_is_a_command_line_error_not_a_traceback(
        adapters, launched, tmp_path, capsys, make, message):
    (tmp_path / 'base.safetensors').write_bytes(b'not safetensors')
    bad = make(tmp_path, adapters)
    twice = bad.endswith(' twice')
    argv = [fast_config(tmp_path, TINY), '--out-dir', str(tmp_path / 'o')]
    argv += ['--lora', adapters[0]] * 2 if twice else ['--lora', bad]
    with pytest.raises(SystemExit) as stop:
        web_demo.main(argv)
    assert stop.value.code == 2 and not launched
    err = capsys.readouterr().err
    assert message in err and 'Traceback' not in err
    assert ': error: --lora: ' in err.splitlines()[-1]


def test_an_adapter_changes_the_network(adapters, demo):
    """The adapter is really applied: the adapted layer's weight moves by
    the adapter's term, and unloading restores it."""
    qkv = demo.model.unet.attention_blocks[0].qkv
    base = qkv.weight.detach().clone()
    demo.load_loras([(adapters[0], 2.0)])
    try:
        assert lora.is_adapted(qkv)
        assert (qkv.weight.detach() - base).abs().max() > 1e-3
    finally:
        demo.model.unload_lora()
        demo.loras.clear()
    assert not lora.is_adapted(qkv) and (qkv.weight == base).all()
