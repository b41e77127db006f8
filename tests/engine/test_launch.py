"""projects/glide/engine/launch.py: data checked before a run starts."""
import pytest
from mmengine import Config

from projects.glide.engine.launch import check_data


def test_missing_test_data_names_the_option(tmp_path):
    cfg = Config(dict(test_dataloader=dict(dataset=dict(
        data_root=str(tmp_path / 'none'), ann_file='annotations.jsonl'))))
    with pytest.raises(SystemExit, match=r'--cfg-options '
                       r'test_dataloader.dataset.data_root=DIR'):
        check_data(cfg, ['test_dataloader'])
    (tmp_path / 'none').mkdir()
    (tmp_path / 'none' / 'annotations.jsonl').write_text('')
    check_data(cfg, ['test_dataloader', 'val_dataloader'])  # absent: fine
