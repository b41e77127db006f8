"""Shared fixtures, and the golden data of ``tests/data``.

The exactness tests compare this project with OpenAI's reference
implementation (``glide-text2im``) through golden vectors kept in
``tests/data`` (made by ``tests/fixtures/make_reference_fixtures.py``; its
``README.md`` lists the files). They ship with the repository: a missing
file is an error, never a skip.
"""
import json
import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / 'tests' / 'data'
CONFIGS = ROOT / 'projects' / 'glide' / 'configs'
#: The tiny test-only configs (the shapes of the golden reference models).
TEST_CONFIGS = ROOT / 'tests' / 'configs'

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def reference_path(name: str) -> Path:
    """The path of a golden data file.

    Raises:
        FileNotFoundError: The file is not in ``tests/data``.
    """
    path = DATA / name
    if not path.is_file():
        raise FileNotFoundError(
            f'golden data file {path} is missing: tests/data ships with the '
            'repository (restore it from git, or regenerate it with '
            'tests/fixtures/make_reference_fixtures.py)')
    return path


def read_json(name: str):
    """A JSON file of ``tests/data`` (gunzipped if its name ends in .gz)."""
    from tests.fixtures.make_reference_fixtures import read_text
    return json.loads(read_text(reference_path(name)))


def read_key_list(name: str) -> dict:
    """A ``keys_*.txt.gz`` file of ``tests/data``: key -> shape."""
    from tests.fixtures.make_reference_fixtures import read_key_list as read
    return read(reference_path(name))


def load_case(case: str) -> dict:
    """The stored inputs and reference outputs of a tiny case
    (``forward.*``, ``sample.*``); its weights come from
    :func:`tests.reference.reference_state_dict`."""
    from safetensors.torch import load_file
    return load_file(str(reference_path(f'{case}_tiny.safetensors')))


@pytest.fixture(scope='session')
def manifest():
    return read_json('manifest.json')


@pytest.fixture(scope='session', autouse=True)
def _registered():
    """Register our modules and use mmagic's scope, as the README does."""
    from mmengine.registry import init_default_scope
    import projects.glide.models  # noqa: F401
    init_default_scope('mmagic')


def pytest_sessionfinish(session, exitstatus):
    """A skipped test fails the run: every test, the exactness ones above
    all, must run in a fresh clone (``make test`` and CI)."""
    reporter = session.config.pluginmanager.get_plugin('terminalreporter')
    skipped = reporter.stats.get('skipped', []) if reporter else []
    if skipped and exitstatus == 0:
        reporter.write_line(f'{len(skipped)} test(s) skipped: a skip fails '
                            'the suite (tests/conftest.py)', red=True)
        session.exitstatus = 1
