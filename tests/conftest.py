"""Shared fixtures: the reference vectors in ../shared/glide_reference."""
import json
import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get(
    'GLIDE_REFERENCE', ROOT.parent / 'shared' / 'glide_reference'))
CONFIGS = ROOT / 'projects' / 'glide' / 'configs'

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def reference_path(name: str) -> Path:
    path = REFERENCE / name
    if not path.exists():
        pytest.skip(f'reference vectors not found at {path} '
                    '(../shared/glide_reference is absent)')
    return path


@pytest.fixture(scope='session')
def manifest():
    return json.loads(reference_path('manifest.json').read_text())


def load_case(case: str) -> dict:
    from safetensors.torch import load_file
    return load_file(str(reference_path(f'{case}_tiny.safetensors')))


@pytest.fixture(scope='session', autouse=True)
def _registered():
    """Register our modules and use mmagic's scope, as the README does."""
    from mmengine.registry import init_default_scope
    import projects.glide.models  # noqa: F401
    init_default_scope('mmagic')
