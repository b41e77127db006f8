"""tools/train.py, tools/test.py and tools/dist_train.sh on a tiny config."""
import json
import math
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


def test_test_tool_needs_only_the_test_data(tmp_path, data_root):
    """The training and validation folders do not exist: test.py samples,
    scores and writes its grid from the test folder alone (the grid's step
    once read the training loop, which built the training data)."""
    train(tmp_path / 'train', data_root, **{'train_cfg.max_iters': 4,
                                            'train_cfg.val_interval': 100})
    from tools.test import main
    gone = str(tmp_path / 'no_such_folder')
    metrics = main([CONFIG, str(tmp_path / 'train' / 'iter_4.pth'),
                    '--work-dir', str(tmp_path / 'test'), '--cfg-options',
                    f'train_dataloader.dataset.data_root={gone}',
                    f'val_dataloader.dataset.data_root={gone}',
                    f'test_dataloader.dataset.data_root={data_root}'])
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


SCHEDULED = """
_base_ = [{config!r}]
train_cfg = dict(max_iters=4000, val_interval=2000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=200),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=200, end=4000,
         eta_min=1e-5)
]
default_hooks = dict(checkpoint=dict(interval=1000), logger=dict(interval=50))
"""


def test_max_iters_scales_the_schedule(tmp_path, data_root, capsys):
    """A 4000-iteration recipe (warm-up to 200, cosine to 4000, eta_min
    1e-5) run for 8 iterations: the learning rate warms up to its peak and
    anneals to near eta_min, as the whole recipe does; validation,
    checkpoint and logger intervals shrink in proportion. With --verbose
    the start-up tables are printed."""
    config = tmp_path / 'scheduled.py'
    config.write_text(SCHEDULED.format(config=CONFIG))
    runner = main_train(tmp_path / 'run', data_root, str(config),
                        '--max-iters', '8', '--verbose')
    out = capsys.readouterr().out
    assert 'Hooks will be executed in the following order' in out
    assert runner.train_loop.max_iters == 8
    assert runner.train_loop.val_interval == 4
    hooks = {type(h).__name__: h for h in runner.hooks}
    assert hooks['GlideCheckpointHook'].interval == 2
    assert hooks['LoggerHook'].interval == 1
    assert [(s.begin, s.end) for s in runner.param_schedulers] == \
        [(0, 2), (2, 8)]
    lrs = [step['lr'] for step in logged(tmp_path / 'run')]
    # warm-up from 0.01 x the config's 2e-3 to 2e-3, then the cosine over
    # iterations 2-7 (mmengine's: eta_min at 6 of 6, the run ends at 5 of 6)
    cosine = [1e-5 + (2e-3 - 1e-5) * (1 + math.cos(math.pi * i / 6)) / 2
              for i in range(6)]
    assert lrs == pytest.approx([2e-5, 2e-3] + cosine, rel=1e-6)


def test_no_validate_and_a_quiet_start(tmp_path, data_root, capsys):
    """--no-validate: no validation, and no validation data needed. The
    console shows a short summary, not mmengine's tables (in the log file)
    nor a warning about a 'gt_img' that GLIDE never reads."""
    gone = str(tmp_path / 'no_such_folder')
    runner = main_train(tmp_path / 'run', data_root, CONFIG, '--no-validate',
                        cfg_options=['train_cfg.max_iters=2',
                                     f'val_dataloader.dataset.data_root={gone}'])
    out = capsys.readouterr().out
    assert runner.val_loop is None
    assert not [f for _, _, fs in os.walk(tmp_path) for f in fs
                if f.startswith('val_')]
    summary = out[out.index('tools/train.py: '):]
    assert '2 iterations; validation off' in summary
    log_file = summary.split('environment, config and hooks: ')[1].split()[0]
    for text in ('Hooks will be executed', 'System environment', 'Config:',
                 "Cannot find key 'gt_img'"):
        assert text not in out, text
    assert 'Hooks will be executed' in open(log_file).read()
    assert 'Iter(train) [2/2]' in out


def main_train(work_dir, data_root, config, *args, cfg_options=()):
    """tools/train.py on ``config`` with the data folder for training and
    validation, then ``cfg_options``."""
    from tools.train import main
    return main([config, '--work-dir', str(work_dir), *args, '--cfg-options',
                 f'train_dataloader.dataset.data_root={data_root}',
                 f'val_dataloader.dataset.data_root={data_root}',
                 *cfg_options])


def logged(work_dir):
    """The training iterations' records of a run's JSON log."""
    records = []
    for dp, _, fs in os.walk(work_dir):
        for f in fs:
            if f.endswith('.json') and f != 'scalars.json':
                with open(os.path.join(dp, f)) as lines:
                    records += [json.loads(line) for line in lines
                                if '"lr"' in line]
    return sorted(records, key=lambda r: r['iter'])
