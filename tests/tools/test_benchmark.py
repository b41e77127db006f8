"""tools/benchmark.py runs and prints every figure (tiny config, CPU)."""
import pytest

from tests.conftest import TEST_CONFIGS
from tools.benchmark import main, op_kind

KINDS = {'convolutions', 'attention', 'linear layers', 'GroupNorm', 'SiLU',
         'dtype casts', 'layout copies', 'resampling',
         'elementwise (add, mul, cat, ...)', 'other',
         'between ops in the network (Python, dispatch)',
         'outside the network (guidance, sampler)'}


def test_benchmark_prints_all_figures(capsys):
    results = main(['--config', str(TEST_CONFIGS / 'glide_tiny_16-32.py'),
                    '--repeats', '1', '--dtype', 'float32'])
    out = capsys.readouterr().out
    assert 'matmul peak float32' in out and 'SUMMARY:' in out
    assert '64->256 pipeline' in out
    assert out.count('per-op profile of one step') == 6
    names = {name for _, name in results}
    assert names == {'baseline float32 eager', 'optimised float32 contiguous',
                     'optimised float32 channels_last'}
    for (stage, name), row in results.items():
        assert row['seconds_per_step'] > 0 and row['gflops_per_step'] > 0
        assert 0 < row['ratio_to_peak'] < 5
        assert row['peak_memory_gib'] > 0
        kinds = {kind for kind, *_ in row['profile']}
        assert kinds <= KINDS and 'convolutions' in kinds
        assert 'attention' in kinds
        # The kinds of work share the step between them.
        assert sum(share for _, _, share, _ in row['profile']) == \
            pytest.approx(1, abs=1e-6)
        convs = [r for r in row['profile'] if r[0] == 'convolutions'][0]
        assert convs[3] > 0.5 * row['gflops_per_step']  # GFLOPs counted
    base = results[('base', 'baseline float32 eager')]
    assert base['sample_s ancestral 100 (reference)'] == \
        100 * base['seconds_per_step']
    # Both paths do the same model work: the FLOP count does not depend on
    # the attention kernel (torch does not count the CPU flash kernel).
    for stage in ('base', 'upsample'):
        counts = {round(r['gflops_per_step'], 6)
                  for (s, _), r in results.items() if s == stage}
        assert len(counts) == 1


@pytest.mark.parametrize('name,kind', [
    ('aten::convolution', 'convolutions'), ('aten::conv1d', 'convolutions'),
    ('aten::scaled_dot_product_attention', 'attention'),
    ('aten::einsum', 'attention'), ('aten::matmul', 'attention'),
    ('aten::softmax', 'attention'), ('aten::linear', 'linear layers'),
    ('aten::group_norm', 'GroupNorm'), ('aten::silu', 'SiLU'),
    ('aten::to', 'dtype casts'), ('aten::contiguous', 'layout copies'),
    ('aten::add', 'elementwise (add, mul, cat, ...)'),
    ('aten::avg_pool2d', 'resampling'), ('aten::cos', 'other')])
def test_ops_are_sorted_into_kinds_of_work(name, kind):
    assert op_kind(name) == kind
