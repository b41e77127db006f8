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
    # mmengine's default work_dir is work_dirs/<config name>
    assert (f'work_dirs/glide_shapes-32/iter_{stage1.train_cfg.max_iters}.pth'
            in text)
    assert (f'work_dirs/glide_shapes-32_stage2/'
            f'iter_{stage2.train_cfg.max_iters}.pth' in text)
    # stage 2 starts from the file stage 1 is published to
    published = re.search(r'iter_\d+\.pth \\\n\s+(\S+) --dtype float16',
                          text).group(1)
    assert stage2.load_from == published
    assert stage1.load_from is None
    # the same objective and network in both stages
    assert stage2.model == stage1.model


@pytest.mark.parametrize('nproc', ['3', '0', 'two'])
def test_a_process_count_that_does_not_split_the_batch_is_refused(nproc):
    done = subprocess.run(['bash', str(SCRIPT), nproc], capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 2
    assert 'NUM_PROCESSES must be 1, 2, 4, 8, 16 or 32' in done.stderr
    assert f"got '{nproc}'" in done.stderr
