"""The configs of projects/glide/configs: each one listed in metafile.yml
(MMagic's model index) with a config and weights that exist, each one
loading with mmengine, and the shapes configs built from the _base_ pieces,
never from the LAION files."""
import ast
from pathlib import Path

import pytest
import yaml
from mmengine import Config

from tests.conftest import CONFIGS, ROOT, TEST_CONFIGS

METAFILE = CONFIGS / 'metafile.yml'
MODEL_KEYS = {'Name', 'In Collection', 'Config', 'Metadata', 'Results',
              'Weights'}
OWN_CONFIGS = sorted(CONFIGS.glob('*.py'))
PIECES = sorted((CONFIGS / '_base_').rglob('*.py'))


def metafile():
    return yaml.safe_load(METAFILE.read_text())


def base_files(path: Path) -> list:
    """The files a config names in ``_base_`` (read, not executed)."""
    for node in ast.parse(path.read_text()).body:
        if (isinstance(node, ast.Assign)
                and getattr(node.targets[0], 'id', None) == '_base_'):
            names = ast.literal_eval(node.value)
            names = [names] if isinstance(names, str) else names
            return [(path.parent / name).resolve() for name in names]
    return []


def ancestors(path: Path) -> set:
    """Every file a config inherits from, directly or not."""
    found = set()
    for base in base_files(path):
        found |= {base} | ancestors(base)
    return found


def test_every_config_is_in_the_metafile_and_every_entry_is_a_config():
    meta = metafile()
    collections = {c['Name'] for c in meta['Collections']}
    listed = []
    for model in meta['Models']:
        assert MODEL_KEYS <= set(model), model.get('Name')
        assert model['In Collection'] in collections, model['Name']
        path = ROOT / model['Config']
        assert path.is_file(), model['Config']
        assert path.stem == model['Name']
        listed.append(path)
    assert sorted(listed) == OWN_CONFIGS
    assert len(set(listed)) == len(listed), 'a config is listed twice'


def test_weights_are_a_download_or_a_file_of_this_repository():
    for model in metafile()['Models']:
        weights = model['Weights']
        if weights is None:  # converted from OpenAI's files, or your own
            continue
        if not weights.startswith('https://'):
            assert (ROOT / weights).is_file(), (model['Name'], weights)


@pytest.mark.parametrize(
    'path', OWN_CONFIGS + PIECES + sorted(TEST_CONFIGS.glob('*.py')),
    ids=lambda p: str(p.relative_to(ROOT)))
def test_config_loads(path):
    cfg = Config.fromfile(str(path))
    if path in OWN_CONFIGS:
        assert cfg.model.type == 'Glide'
        assert cfg.default_scope == 'mmagic'


def test_shapes_configs_are_built_from_the_pieces_not_the_laion_files():
    shapes = [p for p in OWN_CONFIGS if '_shapes-' in p.name]
    assert len(shapes) == 10
    for path in shapes:
        inherited = ancestors(path)
        assert inherited, path.name
        # the pieces, or another shapes config (a distillation stage builds
        # on the one before)
        assert all(p.parent.parent.name == '_base_'
                   or p.parent.name == '_base_' or '_shapes-' in p.name
                   for p in inherited), path.name
        assert not [p for p in inherited if 'laion' in p.name], path.name
