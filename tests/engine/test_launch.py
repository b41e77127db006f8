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


def recipe(**train_cfg):
    """A 4000-iteration recipe: warm-up to 200, cosine to 4000."""
    return Config(dict(
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=4000,
                       **train_cfg),
        default_hooks=dict(checkpoint=dict(interval=500),
                           logger=dict(interval=50)),
        param_scheduler=[
            dict(type='LinearLR', by_epoch=False, begin=0, end=200),
            dict(type='CosineAnnealingLR', by_epoch=False, begin=200,
                 end=4000, T_max=3800)]))


def test_shorten_schedule_scales_every_phase_and_interval():
    from projects.glide.engine.launch import shorten_schedule
    cfg = recipe(val_interval=1000)
    changes = shorten_schedule(cfg, 400)
    assert cfg.train_cfg.max_iters == 400
    assert [(s.begin, s.end) for s in cfg.param_scheduler] == \
        [(0, 20), (20, 400)]
    assert cfg.param_scheduler[1].T_max == 380
    assert cfg.train_cfg.val_interval == 100
    assert cfg.default_hooks.checkpoint.interval == 50
    assert cfg.default_hooks.logger.interval == 5
    assert 'param_scheduler[0] (LinearLR).end: 200 -> 20' in changes


def test_shorten_schedule_keeps_two_iterations_per_phase():
    """A warm-up of fewer than 2 iterations never leaves its start factor
    (mmengine's LinearLR), so a phase keeps 2; validation "past the end"
    stays past the end; a run with no room for the phases is refused."""
    from projects.glide.engine.launch import shorten_schedule
    cfg = recipe(val_interval=4001)
    shorten_schedule(cfg, 5)
    assert [(s.begin, s.end) for s in cfg.param_scheduler] == \
        [(0, 2), (2, 5)]
    assert cfg.param_scheduler[1].T_max == 3  # its phase's length
    assert cfg.train_cfg.val_interval == 6
    with pytest.raises(SystemExit, match=r'--max-iters 3 is too short for '
                       r'the learning rate schedule .*give at least 4'):
        shorten_schedule(recipe(), 3)


@pytest.mark.parametrize('change,match', [
    (dict(train_cfg=dict(type='EpochBasedTrainLoop', max_epochs=3)),
     "needs train_cfg of type 'IterBasedTrainLoop'"),
    (dict(param_scheduler=[dict(type='LinearLR', begin=0, end=2)]),
     r'param_scheduler\[0\] \(LinearLR\) counts epochs'),
])
def test_shorten_schedule_refuses_what_it_cannot_scale(change, match):
    from projects.glide.engine.launch import shorten_schedule
    cfg = recipe()
    cfg.merge_from_dict(change)
    with pytest.raises(SystemExit, match=match):
        shorten_schedule(cfg, 10)
    with pytest.raises(SystemExit, match='at least 1, got 0'):
        shorten_schedule(recipe(), 0)
