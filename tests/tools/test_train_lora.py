"""tools/train_lora.py (a folder -> an adapter file, the DreamBooth form)
and adapter training through tools/train.py (exact resume), on the tiny
training config."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from mmagic.apis import init_model
from projects.glide.models import lora
from projects.glide.models.checkpoint import save_state_dict
from tests.conftest import TEST_CONFIGS
from tests.models.test_glide import randomize
from tests.tools.test_train_test import COLOURS, options

CONFIG = str(TEST_CONFIGS / 'glide_tiny_train-16.py')


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """Eight 24x24 captioned images: a coloured square on gray."""
    root = tmp_path_factory.mktemp('data')
    (root / 'images').mkdir()
    with open(root / 'annotations.jsonl', 'w') as f:
        for i, (name, colour) in enumerate(list(COLOURS.items()) * 2):
            img = np.full((24, 24, 3), 60, np.uint8)
            img[6 * (i // 4):6 * (i // 4) + 12, 6:18] = colour
            Image.fromarray(img).save(root / 'images' / f'{i}.png')
            f.write(json.dumps({'path': f'images/{i}.png',
                                'caption': f'a {name} square'}) + '\n')
    return str(root)


@pytest.fixture(scope='module')
def base_ckpt(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('base') / 'tiny.safetensors')
    save_state_dict(randomize(init_model(CONFIG, None, device='cpu'))
                    .state_dict(), path)
    return path


def train_lora(*args):
    from tools.train_lora import main
    return main(list(args))


def test_a_folder_becomes_a_small_float16_adapter(tmp_path, data_root,
                                                 base_ckpt, capsys):
    out = str(tmp_path / 'squares.safetensors')
    train_lora(data_root, '--out', out, '--config', CONFIG, '--checkpoint',
               base_ckpt, '--iters', '3', '--batch-size', '4', '--rank',
               '2', '--work-dir', str(tmp_path / 'work'))
    printed = capsys.readouterr().out
    assert 'adapter parameters for 3 iterations' in printed
    assert f'wrote {out}' in printed
    with safe_open(out, framework='pt') as f:
        ups = [f.get_tensor(k) for k in f.keys() if k.endswith('lora_up')]
        downs = [f.get_tensor(k) for k in f.keys() if k.endswith('lora_down')]
    assert ups and all(t.dtype == torch.float16 for t in ups + downs)
    assert {t.shape[1] for t in ups} == {2}
    assert any(t.abs().sum() > 0 for t in ups)  # it trained (up starts 0)
    base = init_model(CONFIG, base_ckpt, device='cpu')
    before = {k: v.clone() for k, v in base.state_dict().items()}
    base.load_lora(out)
    assert len(lora.adapted_layers(base)) == len(ups)
    base.unload_lora()
    for k, v in base.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_dreambooth_form_with_prior_preservation(tmp_path, data_root,
                                                 base_ckpt):
    images = tmp_path / 'subject'
    images.mkdir()
    for name in sorted(os.listdir(os.path.join(data_root, 'images')))[:3]:
        os.symlink(os.path.join(data_root, 'images', name), images / name)
    work = tmp_path / 'work'
    out = str(tmp_path / 'subject.safetensors')
    train_lora(str(images), '--out', out, '--config', CONFIG, '--checkpoint',
               base_ckpt, '--iters', '2', '--batch-size', '2', '--work-dir',
               str(work), '--instance-prompt', 'a sks square',
               '--class-prompt', 'a square', '--num-class-images', '2')
    with open(work / 'data' / 'annotations.jsonl') as f:
        rows = [json.loads(line) for line in f]
    captions = [r['caption'] for r in rows]
    assert captions == ['a sks square'] * 3 + ['a square'] * 2
    assert all(os.path.isfile(r['path']) for r in rows)
    assert os.path.isfile(out)


@pytest.mark.parametrize('args, match', [
    (['--out', 'a.pth'], '--out must end in .safetensors'),
    (['--out', 'a.safetensors', '--iters', '0'], '--iters must be at least'),
    (['--out', 'a.safetensors', '--num-class-images', '2'],
     '--num-class-images needs --instance-prompt and --class-prompt'),
    (['--out', 'a.safetensors', '--checkpoint', 'nowhere.pth'],
     "--checkpoint file not found: 'nowhere.pth'"),
])
def test_bad_options_are_clear_errors(args, match, data_root, capsys):
    with pytest.raises(SystemExit):
        train_lora(data_root, '--config', CONFIG, *args)
    assert match in capsys.readouterr().err


def test_a_folder_without_annotations_says_what_to_do(tmp_path, base_ckpt):
    with pytest.raises(SystemExit, match='has no annotations.jsonl'):
        train_lora(str(tmp_path), '--out', str(tmp_path / 'a.safetensors'),
                   '--config', CONFIG, '--checkpoint', base_ckpt)


def test_adapter_training_through_train_py_resumes_exactly(
        tmp_path, data_root, base_ckpt):
    from tools.train import main

    def train(work_dir, *args, **extra):
        opts = {'model.lora_config.rank': 2, 'load_from': base_ckpt,
                'train_cfg.val_interval': 100,
                'default_hooks.checkpoint.interval': 3, **extra}
        return main([CONFIG, '--work-dir', str(work_dir), *args,
                     '--cfg-options', *options(data_root, **opts)])

    train(tmp_path / 'straight', **{'train_cfg.max_iters': 6})
    train(tmp_path / 'resumed', **{'train_cfg.max_iters': 3})
    train(tmp_path / 'resumed', '--resume', **{'train_cfg.max_iters': 6})
    a = torch.load(tmp_path / 'straight' / 'iter_6.pth', weights_only=False)
    b = torch.load(tmp_path / 'resumed' / 'iter_6.pth', weights_only=False)
    base = init_model(CONFIG, base_ckpt, device='cpu').state_dict()
    adapters = [k for k in a['state_dict'] if lora.is_adapter_key(k)]
    assert adapters and a['state_dict'].keys() == b['state_dict'].keys()
    for k, v in a['state_dict'].items():
        assert torch.equal(v, b['state_dict'][k]), k
    # Frozen: the raw weights (mmengine's EMAHook stores them as
    # ema_state_dict, the average as state_dict) did not move.
    raw = {k.replace('module.', '', 1): v
           for k, v in a['ema_state_dict'].items()}
    for k, v in base.items():
        assert torch.equal(raw[k], v), k
    assert any(a['state_dict'][k].abs().sum() > 0 for k in adapters
               if k.endswith('.up'))
