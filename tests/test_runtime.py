"""projects/glide/runtime.py: quiet third-party imports, thread count and
the environment check of the tools."""
import subprocess
import sys
import warnings

import torch

from projects.glide import runtime
from tests.conftest import ROOT


def test_only_third_party_warnings_are_silenced():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        with runtime.quiet_third_party_warnings():
            for module in ('timm.models.layers', 'diffusers.utils.outputs',
                           'controlnet_aux', 'projects.glide.models.glide',
                           'timmy'):
                warnings.warn_explicit(f'from {module}', FutureWarning,
                                       'x.py', 1, module=module)
    assert [str(w.message) for w in seen] == [
        'from projects.glide.models.glide', 'from timmy']


def test_importing_the_package_shows_no_third_party_warnings():
    done = subprocess.run(
        [sys.executable, '-c', 'import projects.glide.models'],
        cwd=str(ROOT), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert 'Warning' not in done.stderr, done.stderr[-2000:]


def test_threads_follow_omp_num_threads(monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '3')
    assert runtime.default_threads() == (3, 'OMP_NUM_THREADS=3')


def test_threads_default_to_the_physical_cores(monkeypatch):
    """Whatever the load average (which still counts a job that just
    ended): one thread per physical core."""
    monkeypatch.delenv('OMP_NUM_THREADS', raising=False)
    monkeypatch.setattr(runtime, 'physical_cores', lambda: 4)
    monkeypatch.setattr(runtime.os, 'getloadavg', lambda: (2.6, 0, 0))
    assert runtime.default_threads() == (4, '4 physical cores')


def test_configure_threads_sets_torch_and_says_so(monkeypatch):
    monkeypatch.setenv('OMP_NUM_THREADS', '1')
    before = torch.get_num_threads()
    lines = []
    try:
        assert runtime.configure_threads(lines.append) == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert lines == ['[glide] 1 CPU thread (OMP_NUM_THREADS=1; set '
                     'OMP_NUM_THREADS to choose)']


def test_physical_cores_is_within_the_cpus():
    import os
    assert 1 <= runtime.physical_cores() <= os.cpu_count()


def test_known_import_warnings_are_silenced_and_others_are_not():
    """Only the listed messages of the listed packages are ignored."""
    import warnings

    from projects.glide.runtime import silence_known_import_warnings
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter('always')
        silence_known_import_warnings()
        for module, message in (
                ('timm.models.layers', 'Importing from timm.models.layers '
                 'is deprecated, please import via timm.layers'),
                ('controlnet_aux.x', 'Overwriting tiny_vit_5m_224 in '
                 'registry with controlnet_aux.y'),
                ('timm.models', 'a new timm warning'),
                ('mine', 'Overwriting tiny_vit_5m_224 in registry')):
            warnings.warn_explicit(message, FutureWarning, 'f.py', 1,
                                   module=module)
    assert [str(w.message) for w in seen] == [
        'a new timm warning', 'Overwriting tiny_vit_5m_224 in registry']
