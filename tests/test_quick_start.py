"""The README's Quick Start, as a user runs it: the demo model in place of
the full-size weights (as the README says), and it prints no warning."""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_code() -> str:
    readme = (ROOT / 'README.md').read_text()
    section = readme.split('## Quick Start', 1)[1]
    return re.search(r'```python\n(.*?)```', section, re.S).group(1)


def test_readme_quick_start_runs_quietly_with_the_demo_model():
    code = quick_start_code()
    for name, value in (
            ('config', 'projects/glide/configs/'
             'glide_upsampler_2xb16-1k_shapes-32-64.py'),
            ('ckpt', 'checkpoints/glide_shapes-32.safetensors')):
        code, n = re.subn(rf"^{name} = .*$", f'{name} = {value!r}', code,
                          flags=re.M)
        assert n == 1, f'the Quick Start sets {name} once'
    # Two samples in 5 steps instead of 16 in 100: the same call, cheaper.
    code = code.replace('batch_size=16', 'batch_size=2').replace(
        'num_inference_steps=100', 'num_inference_steps=5')
    code += '\nprint(tuple(samples.shape), float(samples.min()) >= -1)\n'
    run = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert '(2, 3, 64, 64) True' in run.stdout
    noise = [line for line in run.stderr.splitlines()
             if 'Warning' in line or 'Failed to search registry' in line]
    assert not noise, '\n'.join(noise)
