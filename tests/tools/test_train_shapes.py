"""tools/train_shapes.sh, the demo model's recipe in one command: its stages
fit the configs they run (checked without training)."""
import re
import subprocess

import pytest
from mmengine import Config

from tests.conftest import CONFIGS, ROOT

SCRIPT = ROOT / 'tools' / 'train_shapes.sh'


STAGE1 = 'glide_base-stage1_2xb16-4k_shapes-32x32'
STAGE2 = 'glide_base-stage2_2xb16-4k_shapes-32x32'
UPSAMPLER = 'glide_upsampler_2xb16-1k_shapes-32-64'
CLIP = 'glide_noised-clip_1xb64-2k_shapes-32x32'
INPAINT = 'glide_inpaint_2xb16-1500_shapes-32x32'
CONFIGS_DIR = 'projects/glide/configs'


def script_commands():
    """The script with its name variables (``NAME=value`` lines) expanded,
    quotes dropped and continued lines joined."""
    text = re.sub(r'\\\n\s*', '', SCRIPT.read_text())
    names = re.findall(r'^([A-Z0-9_]+)=([\w./$-]+)$', text, re.M)
    for name, value in reversed(names):  # later names use earlier ones
        text = text.replace(f'${name}', value)
    return text.replace('"', '')


def test_each_stage_publishes_the_last_checkpoint_of_its_config():
    text = script_commands()
    stage1, stage2, upsampler, inpaint, clip = (
        Config.fromfile(str(CONFIGS / f'{name}.py'))
        for name in (STAGE1, STAGE2, UPSAMPLER, INPAINT, CLIP))
    # the script names the configs it trains; they exist
    assert re.findall(r'^train (\S+)', text, re.M) == [
        STAGE1, STAGE2, UPSAMPLER, INPAINT]
    # mmengine's default work_dir is work_dirs/<config name>; each stage's
    # last checkpoint is published to the file the next stage starts from
    published = dict(re.findall(r'^publish (\S+) (\S+)', text, re.M))
    assert published == {
        f'work_dirs/{STAGE1}/iter_{stage1.train_cfg.max_iters}.pth':
        stage2.load_from,
        f'work_dirs/{STAGE2}/iter_{stage2.train_cfg.max_iters}.pth':
        upsampler.load_from,
        f'work_dirs/{UPSAMPLER}/iter_{upsampler.train_cfg.max_iters}.pth':
        '$OUT',
        f'work_dirs/{INPAINT}/iter_{inpaint.train_cfg.max_iters}.pth':
        '$OUT_INPAINT',
    }
    # the CLIP guide starts from the base model too, and is merged into
    # the published file
    assert (f'tools/train.py {CONFIGS_DIR}/{CLIP}.py '
            f'--cfg-options load_from={upsampler.load_from}\n') in text
    assert (f'--merge work_dirs/{CLIP}/'
            f'iter_{clip.train_cfg.max_iters}.pth\n') in text
    assert clip.model.unet == stage1.model.unet
    assert clip.model.train_cfg.stage == 'clip'
    assert stage1.load_from is None
    # the same objective and network in both base stages
    assert stage2.model == stage1.model
    # the upsampler run keeps the base network and trains only unet_up
    assert upsampler.model.unet == stage1.model.unet
    assert upsampler.model.train_cfg.stage == 'upsample'
    # the inpainting model is fine-tuned from the base model
    assert f'train {INPAINT} load_from={upsampler.load_from}\n' in text
    assert inpaint.model.train_cfg.init_from_base
    # the script makes the datasets each config reads, at its image size
    made = {f'data/{name}': int(size) for name, size in
            re.findall(r'^datasets (\S+) (\d+)$', text, re.M)}
    for cfg, size in ((stage1, 32), (upsampler, 64), (inpaint, 32),
                      (clip, 32)):
        root = cfg.train_dataloader.dataset.data_root
        assert made[root] == size, root
    for cfg in (stage1, upsampler):
        assert cfg.val_dataloader.dataset.data_root == \
            cfg.train_dataloader.dataset.data_root + '_val'


@pytest.mark.parametrize('nproc', ['3', '0', 'two'])
def test_a_process_count_that_does_not_split_the_batch_is_refused(nproc):
    done = subprocess.run(['bash', str(SCRIPT), nproc], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2
    assert 'NUM_PROCESSES must be 1, 2, 4, 8, 16 or 32' in done.stderr
    assert f"got '{nproc}'" in done.stderr
