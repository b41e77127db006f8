"""tools/train_shapes.sh, the demo model's recipe in one command: its stages
fit the configs they run (checked without training)."""
import re
import subprocess

import pytest
from mmengine import Config

from tests.conftest import CONFIGS, ROOT

SCRIPT = ROOT / 'tools' / 'train_shapes.sh'


def test_each_stage_publishes_the_last_checkpoint_of_its_config():
    text = SCRIPT.read_text()
    stage1 = Config.fromfile(str(CONFIGS / 'glide_shapes-32.py'))
    stage2 = Config.fromfile(str(CONFIGS / 'glide_shapes-32_stage2.py'))
    upsampler = Config.fromfile(str(CONFIGS / 'glide_shapes-32-64.py'))
    inpaint = Config.fromfile(str(CONFIGS / 'glide_shapes-32-inpaint.py'))
    # mmengine's default work_dir is work_dirs/<config name>; each stage's
    # last checkpoint is published to the file the next stage starts from
    published = dict(
        re.findall(r'(work_dirs/\S+/iter_\d+\.pth) \\?\n?\s*(\S+) '
                   r'--dtype float16', text))
    assert published == {
        f'work_dirs/glide_shapes-32/iter_{stage1.train_cfg.max_iters}.pth':
        stage2.load_from,
        f'work_dirs/glide_shapes-32_stage2/'
        f'iter_{stage2.train_cfg.max_iters}.pth': upsampler.load_from,
        f'work_dirs/glide_shapes-32-64/'
        f'iter_{upsampler.train_cfg.max_iters}.pth': '"$OUT"',
        f'work_dirs/glide_shapes-32-inpaint/'
        f'iter_{inpaint.train_cfg.max_iters}.pth': '"$OUT_INPAINT"',
    }
    # the CLIP guide starts from the base model too, and is merged into
    # the published file
    clip = Config.fromfile(str(CONFIGS / 'glide_shapes-32-clip.py'))
    assert ('glide_shapes-32-clip.py" \\\n    --cfg-options '
            f'load_from={upsampler.load_from}\n') in text
    assert (f'--merge work_dirs/glide_shapes-32-clip/'
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
    assert ('glide_shapes-32-inpaint.py" "$NPROC" \\\n'
            '    --cfg-options train_dataloader.batch_size="$BATCH" \\\n'
            f'    load_from={upsampler.load_from}\n') in text
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
