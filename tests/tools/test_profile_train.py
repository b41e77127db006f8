"""tools/profile_train.py: the phases of a training iteration of the shapes
config, in both precisions (a few small iterations; figures are printed,
not judged)."""
from tests.conftest import CONFIGS
from tools.make_shapes_dataset import main as make_dataset
from tools.profile_train import PHASES, main

CONFIG = str(CONFIGS / 'glide_base-stage1_2xb16-4k_shapes-32x32.py')


def test_phases_account_for_the_iteration_in_both_precisions(tmp_path,
                                                             capsys):
    make_dataset(['--out', str(tmp_path), '--num', '8', '--quiet'])
    results = main([CONFIG, '--batch', '4', '--steps', '2', '--warmup', '1',
                    '--ops', '5', '--cfg-options',
                    f'train_dataloader.dataset.data_root={tmp_path}'])
    out = capsys.readouterr().out
    assert set(results) == {'float32', 'bfloat16'}
    for dtype, r in results.items():
        phases = r['phases']
        assert set(phases) == set(PHASES)
        # each phase of the network's own work was seen and timed
        for name in ('tokenize', 'text', 'unet', 'backward', 'optimizer',
                     'ema', 'data'):
            assert phases[name] > 0, (dtype, name)
        # phases are disjoint parts of the iteration (nested ones
        # subtracted), and together they are nearly all of it
        assert 0.9 * r['seconds'] <= sum(phases.values()) <= r['seconds']
        assert f'| {dtype} |' in out
    assert 'fastest here:' in out
    assert 'Self CPU' in out  # the operator table
