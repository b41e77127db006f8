"""tools/glide_sample.py: prompts to a PNG grid with its settings."""
import json

from PIL import Image

from tests.conftest import CONFIGS
from tools.glide_sample import main


def test_writes_png_grid_with_settings(tmp_path):
    out = tmp_path / 'grid.png'
    main(['a red cube', 'a blue ball', '--config',
          str(CONFIGS / 'glide_tiny_16-32.py'), '--out', str(out),
          '--batch-size', '2', '--steps', '4', '--steps-up', '3',
          '--sampler', 'ddim', '--seed', '5', '--no-progress'])
    image = Image.open(out)
    assert image.size == (2 * 32 + 3 * 2, 2 * 32 + 3 * 2)  # 2x2 grid
    settings = json.loads(image.text['glide'])
    assert settings['prompts'] == ['a red cube', 'a blue ball']
    assert settings['seed'] == 5 and settings['sampler'] == 'GlideDDIMScheduler'
