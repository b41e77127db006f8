"""tools/train.py, tools/test.py and tools/dist_train.sh on a tiny config."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from mmagic.apis import init_model
from tests.conftest import ROOT, TEST_CONFIGS

CONFIG = str(TEST_CONFIGS / 'glide_tiny_train-16.py')
COLOURS = {'red': (230, 20, 20), 'green': (20, 230, 20),
           'blue': (20, 20, 230), 'yellow': (230, 230, 20)}


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    """Eight 24x24 images: a coloured square on gray, in two places."""
    root = tmp_path_factory.mktemp('data')
    (root / 'images').mkdir()
    with open(root / 'annotations.jsonl', 'w') as f:
        for i, (name, colour) in enumerate(list(COLOURS.items()) * 2):
            img = np.full((24, 24, 3), 60, np.uint8)
            top = 0 if i < 4 else 12
            img[top:top + 12, 6:18] = colour
            Image.fromarray(img).save(root / 'images' / f'{i}.png')
            where = 'top' if i < 4 else 'bottom'
            f.write(json.dumps({'path': f'images/{i}.png',
                                'caption': f'a {name} square at the {where}'})
                    + '\n')
    return str(root)


def options(data_root, **extra):
    opts = [f'{k}.dataset.data_root={data_root}'
            for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    return opts + [f'{k}={v}' for k, v in extra.items()]


def train(work_dir, data_root, *args, **extra):
    from tools.train import main
    return main([CONFIG, '--work-dir', str(work_dir), *args,
                 '--cfg-options', *options(data_root, **extra)])


def loss_values(work_dir):
    logs = [os.path.join(dp, f) for dp, _, fs in os.walk(work_dir)
            for f in fs if f.endswith('.json') and f != 'scalars.json']
    values = []
    for log in logs:
        with open(log) as f:
            values += [json.loads(line)['loss'] for line in f
                       if '"loss"' in line]
    return values


def test_train_overfits_and_checkpoint_samples(tmp_path, data_root):
    runner = train(tmp_path, data_root, **{'train_cfg.max_iters': 60,
                                           'train_cfg.val_interval': 60,
                                           'default_hooks.logger.interval': 5,
                                           'model.train_cfg.p_uncond': 0.0})
    losses = loss_values(tmp_path)
    print('tiny overfit loss:', [round(v, 3) for v in losses])
    assert len(losses) >= 10
    first, last = np.mean(losses[:2]), np.mean(losses[-3:])
    assert last < 0.5 * first, (first, last)
    ckpt = str(tmp_path / 'iter_60.pth')
    model = init_model(CONFIG, ckpt, device='cpu')
    out = model.infer(prompt='a red square at the top', num_inference_steps=5,
                      seed=0)
    assert out['samples'].shape == (1, 3, 16, 16)
    # validation wrote a grid through the visualizer
    grids = [f for dp, _, fs in os.walk(tmp_path) for f in fs
             if f.startswith('val_samples')]
    assert grids
    del runner


def test_resume_continues_exactly(tmp_path, data_root):
    opts = {'train_cfg.max_iters': 12, 'train_cfg.val_interval': 100,
            'default_hooks.checkpoint.interval': 6}
    train(tmp_path / 'straight', data_root, **opts)
    train(tmp_path / 'resumed', data_root,
          **dict(opts, **{'train_cfg.max_iters': 6}))
    train(tmp_path / 'resumed', data_root, '--resume', **opts)
    a = torch.load(tmp_path / 'straight' / 'iter_12.pth', weights_only=False)
    b = torch.load(tmp_path / 'resumed' / 'iter_12.pth', weights_only=False)
    for key in ('state_dict', 'ema_state_dict'):
        assert a[key].keys() == b[key].keys()
        for k in a[key]:
            assert torch.equal(a[key][k], b[key][k]), (key, k)


def test_load_from_a_published_safetensors_starts_model_and_ema(
        tmp_path, data_root):
    """A second stage starts from published float16 weights (a bare state
    dict, as tools/train_shapes.sh does): the model and its EMA both start
    from them (with the learning rate at 0 they stay there). mmengine's
    EMAHook reads ``checkpoint['state_dict']`` on ``load_from``, which a
    bare safetensors file lacked (KeyError before the loader wrapped it)."""
    opts = {'train_cfg.max_iters': 2, 'train_cfg.val_interval': 100,
            'default_hooks.checkpoint.interval': 2}
    train(tmp_path / 'stage1', data_root, **opts)
    from tools.publish_checkpoint import main as publish
    published = tmp_path / 'stage1.safetensors'
    publish([str(tmp_path / 'stage1' / 'iter_2.pth'), str(published)])
    train(tmp_path / 'stage2', data_root, **dict(
        opts, load_from=str(published), **{'optim_wrapper.optimizer.lr': 0.0}))
    from safetensors.torch import load_file
    start = load_file(str(published))
    end = torch.load(tmp_path / 'stage2' / 'iter_2.pth', weights_only=False)
    for key in ('state_dict', 'ema_state_dict'):  # EMA, raw weights
        weights = {k.replace('module.', '', 1): v
                   for k, v in end[key].items() if k != 'steps'}
        assert weights.keys() == start.keys(), key
        for k, v in start.items():  # the EMA update rounds (~1e-8)
            torch.testing.assert_close(weights[k], v.float(), rtol=0,
                                       atol=1e-6, msg=f'{key}: {k}')


def test_test_tool_writes_grids_and_metrics(tmp_path, data_root):
    train(tmp_path / 'train', data_root, **{'train_cfg.max_iters': 4,
                                            'train_cfg.val_interval': 100})
    from tools.test import main
    metrics = main([CONFIG, str(tmp_path / 'train' / 'iter_4.pth'),
                    '--work-dir', str(tmp_path / 'test'), '--cfg-options',
                    *options(data_root)])
    assert metrics['glide/num_samples'] == 4
    assert metrics['glide/finite'] == 1.0
    assert 'glide/diversity' in metrics and 'glide/rms_to_gt' in metrics
    grids = [f for dp, _, fs in os.walk(tmp_path / 'test') for f in fs
             if f.startswith('test_samples') and f.endswith('.png')]
    assert grids


def test_two_process_ddp_on_cpu(tmp_path, data_root):
    env = dict(os.environ, PYTHON=sys.executable, PORT='29517',
               OMP_NUM_THREADS='1')
    cmd = ['bash', str(ROOT / 'tools' / 'dist_train.sh'), CONFIG, '2',
           '--work-dir', str(tmp_path), '--cfg-options',
           *options(data_root, **{'train_cfg.max_iters': 4,
                                  'train_cfg.val_interval': 4})]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / 'iter_4.pth').exists()
    assert 'Iter(val)' in done.stdout + done.stderr


def test_dist_scripts_use_the_project_environment(tmp_path):
    """Without PYTHON and with no project python on PATH, dist_test.sh runs
    .venv/bin/python: torch is found and test.py itself reports the missing
    checkpoint (not "No module named 'torch'")."""
    if not (ROOT / '.venv' / 'bin' / 'python').exists():
        pytest.skip('no .venv here')
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    env.update(PATH='/usr/bin:/bin', PORT='29518', OMP_NUM_THREADS='1')
    done = subprocess.run(
        ['bash', str(ROOT / 'tools' / 'dist_test.sh'), CONFIG,
         str(tmp_path / 'none.pth'), '1'], env=env, capture_output=True,
        text=True, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert 'No module named' not in output
    assert "checkpoint '" in output and "none.pth' not found" in output


@pytest.mark.parametrize('script', ['dist_train.sh', 'dist_test.sh'])
def test_dist_scripts_refuse_a_python_without_the_stack(tmp_path, script):
    fake = tmp_path / 'python'
    fake.write_text('#!/bin/sh\nexit 1\n')
    fake.chmod(0o755)
    args = ['c.py', 'ckpt.pth', '1'] if script == 'dist_test.sh' else \
        ['c.py', '1']
    done = subprocess.run(['bash', str(ROOT / 'tools' / script), *args],
                          env=dict(os.environ, PYTHON=str(fake)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert 'lacks torch, mmengine or mmagic' in done.stderr
    assert 'make setup' in done.stderr
    done = subprocess.run(['bash', str(ROOT / 'tools' / script)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and 'usage: bash tools/' in done.stderr


@pytest.mark.parametrize('tool', ['train.py', 'test.py', 'glide_sample.py',
                                  'convert_glide_checkpoint.py',
                                  'benchmark.py', 'eval_shapes.py',
                                  'publish_checkpoint.py'])
def test_tools_run_by_a_python_without_the_stack_say_so(tool):
    """A Python without the packages (this one with ``-S``: no
    site-packages) gets a clear message, not a traceback."""
    done = subprocess.run([sys.executable, '-S', str(ROOT / 'tools' / tool),
                           '--help'], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 1, done.stderr
    assert f'tools/{tool}: this Python ({sys.executable}) lacks torch' in \
        done.stderr
    assert '.venv/bin/python' in done.stderr


def test_train_tool_reports_missing_data_at_start(tmp_path):
    with pytest.raises(SystemExit, match=r'train_dataloader.dataset: '
                       r'annotation file .* not found'):
        train(tmp_path, str(tmp_path / 'no_data'))
