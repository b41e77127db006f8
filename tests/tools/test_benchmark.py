"""tools/benchmark.py runs and prints every figure (tiny config, CPU)."""
from tests.conftest import TEST_CONFIGS
from tools.benchmark import main


def test_benchmark_prints_all_figures(capsys):
    results = main(['--config', str(TEST_CONFIGS / 'glide_tiny_16-32.py'),
                    '--repeats', '1', '--dtype', 'float32'])
    out = capsys.readouterr().out
    assert 'matmul peak float32' in out and 'SUMMARY:' in out
    assert '64->256 pipeline' in out
    for (stage, name), row in results.items():
        assert row['seconds_per_step'] > 0 and row['gflops_per_step'] > 0
        assert 0 < row['ratio_to_peak'] < 5
        assert row['peak_memory_gib'] > 0
    base = results[('base', 'baseline float32 eager')]
    assert base['sample_s ancestral 100 (reference)'] == \
        100 * base['seconds_per_step']
