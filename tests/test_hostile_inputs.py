"""Hostile and odd inputs: images (a decompression bomb, a truncated PNG,
CMYK, 16-bit, palette, greyscale, transparency, a mask of another size),
prompts (10,000 characters, control characters), checkpoints (truncated,
a flipped byte) and dataset folders. Each gets a clear message naming it
or a documented conversion (docs/reliability.md)."""
import json
import shutil
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from projects.glide import api
from projects.glide.api import read_image
from projects.glide.checks import MAX_PROMPT_CHARS, check_prompts
from tests.conftest import TEST_CONFIGS


def bomb_png(path, side=30000):
    """A PNG header of a ``side`` x ``side`` 1-bit image and a little
    data: 60 bytes that would decode to ~112 MB (RGB: 2.7 GB)."""
    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data +
                struct.pack('>I', zlib.crc32(kind + data)))
    ihdr = struct.pack('>IIBBBBB', side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) +
                     chunk(b'IDAT', zlib.compress(b'\0' * 4096)) +
                     chunk(b'IEND', b''))
    return str(path)


def noise(size=32, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size, channels), dtype=np.uint8)


@pytest.mark.parametrize('side', [30000, 5000])  # over PIL's limit / ours
def test_decompression_bomb_is_refused_before_decoding(tmp_path, side):
    path = bomb_png(tmp_path / 'bomb.png', side)
    with pytest.raises(ValueError, match=f'--init-image {path}: The image '
                       'is (too large|.* at most 16,777,216 pixels)'):
        read_image(path, 64, name='--init-image')


def test_truncated_png_is_not_a_readable_image(tmp_path):
    path = tmp_path / 'cut.png'
    Image.fromarray(noise(64)).save(path)
    path.write_bytes(path.read_bytes()[:600])
    with pytest.raises(ValueError, match=f'--mask {path}: The image is '
                       'truncated or damaged'):
        read_image(str(path), 64, 'L', name='--mask')
    path.write_bytes(b'not an image at all')
    with pytest.raises(ValueError, match='not an image Pillow can read'):
        read_image(str(path), 64)


def test_modes_are_converted(tmp_path):
    """CMYK, 16-bit grey (scaled to 8 bits), palette, L, LA and RGBA
    (alpha composited on white): all give RGB in [0, 1]."""
    white_on_alpha = np.zeros((8, 8, 4), np.uint8)  # black, transparent
    white_on_alpha[:4, :, 3] = 255  # top half opaque black
    grey16 = np.full((8, 8), 32768, np.uint16)
    cases = {
        'cmyk.jpg': Image.new('CMYK', (8, 8), (0, 255, 255, 0)),  # red
        'grey16.png': Image.fromarray(grey16),
        'palette.png': Image.fromarray(noise(8)).convert('P'),
        'grey.png': Image.new('L', (8, 8), 128),
        'grey_alpha.png': Image.new('LA', (8, 8), (0, 0)),
        'rgba.png': Image.fromarray(white_on_alpha, 'RGBA'),
    }
    for name, img in cases.items():
        img.save(tmp_path / name)
    assert Image.open(tmp_path / 'grey16.png').mode.startswith('I')
    out = {name: read_image(str(tmp_path / name), 8)[0]
           for name in cases}
    for name, x in out.items():
        assert x.shape == (3, 8, 8) and 0 <= x.min() <= x.max() <= 1, name
    assert out['cmyk.jpg'][0].mean() > 0.9 > 0.1 > out['cmyk.jpg'][1].mean()
    assert abs(out['grey16.png'].mean() - 128 / 255) < 1e-6
    assert abs(out['grey.png'].mean() - 128 / 255) < 1e-6
    assert out['grey_alpha.png'].min() == 1  # transparent -> white
    rgba = out['rgba.png']
    assert rgba[:, :3].max() == 0 and rgba[:, 5:].min() == 1


def test_transparent_palette_is_composited_on_white(tmp_path):
    img = Image.new('P', (8, 8), 0)
    img.putpalette([0, 0, 0] * 256)
    img.save(tmp_path / 'p.png', transparency=0)
    assert read_image(str(tmp_path / 'p.png'), 8).min() == 1


def test_mask_of_another_size_is_resized_with_the_image(tmp_path):
    mask = np.zeros((20, 20), np.uint8)
    mask[:10] = 255
    Image.fromarray(mask).save(tmp_path / 'mask.png')
    x = read_image(str(tmp_path / 'mask.png'), 64, 'L', name='--mask')
    assert x.shape == (1, 1, 64, 64)
    assert x[0, 0, :32].min() == 1 and x[0, 0, 32:].max() == 0


def test_long_prompt_is_refused_naming_the_limit():
    with pytest.raises(ValueError, match=f'prompt has 10000 characters; at '
                       f'most {MAX_PROMPT_CHARS} are accepted'):
        check_prompts('a' * 10000, 1)
    assert check_prompts('a' * MAX_PROMPT_CHARS, 1) == ['a' * 1000]


def test_control_characters_refused_whitespace_made_spaces():
    assert check_prompts('a red\tcircle\r\non black', 1) == [
        'a red circle  on black']
    for char in ('\x00', '\x1b', '\x7f', '\x85'):
        with pytest.raises(ValueError, match=f'negative_prompt has a control '
                           f'character U\\+{ord(char):04X} at position 3'):
            check_prompts(['ok', 'a ' + char + '[31m'], 2, 'negative_prompt')


CONFIG = str(TEST_CONFIGS / 'glide_tiny_train-16.py')


def test_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / 'cut.safetensors'
    with open(api.DEMO_CHECKPOINT, 'rb') as f:
        path.write_bytes(f.read(100000))
    with pytest.raises(ValueError, match=f'cannot read .*{path.name}'):
        api.build_model(CONFIG, str(path))


def test_flipped_byte_in_a_shipped_checkpoint(tmp_path, monkeypatch):
    """A copy of the checkpoints folder with one byte of the weights
    flipped: build_model names the file, both hashes and the fix before
    loading anything."""
    folder = tmp_path / 'checkpoints'
    folder.mkdir()
    shutil.copy(api.CHECKSUMS, folder / 'SHA256SUMS')
    path = folder / 'glide_shapes-32.safetensors'
    data = bytearray(open(api.DEMO_CHECKPOINT, 'rb').read())
    data[-1000] ^= 0x01
    path.write_bytes(bytes(data))
    monkeypatch.setattr(api, 'CHECKSUMS', str(folder / 'SHA256SUMS'))
    with pytest.raises(ValueError) as info:
        api.build_model(CONFIG, str(path))
    message = str(info.value)
    assert f'{path} is damaged or was changed' in message
    assert '1f86a8fa505d149aa04d9f246e4574f1da4eca0835ba23b4f10d26256e466748' \
        in message and 'restore it' in message


def test_dataset_folder_of_hostile_images(tmp_path):
    """A bomb or a truncated file in a dataset folder: an error naming it
    (on_error='raise'), or skipped with a warning (on_error='skip'); CMYK,
    16-bit, palette, LA and RGBA images load as 3-channel 8-bit (OpenCV's
    reading: alpha dropped)."""
    from projects.glide.datasets import CaptionedImageDataset
    from tests.datasets.test_captioned_image_dataset import PIPELINE
    (tmp_path / 'images').mkdir()
    odd = {'cmyk.jpg': Image.new('CMYK', (16, 16), (0, 255, 255, 0)),
           'grey16.png': Image.fromarray(np.full((16, 16), 65535, np.uint16)),
           'palette.png': Image.fromarray(noise(16)).convert('P'),
           'la.png': Image.new('LA', (16, 16), (200, 0)),
           'rgba.png': Image.fromarray(noise(16, 4), 'RGBA')}
    for name, img in odd.items():
        img.save(tmp_path / 'images' / name)
    bomb_png(tmp_path / 'images' / 'bomb.png')
    bomb_png(tmp_path / 'images' / 'big.png', 9000)  # under PIL's limit
    cut = tmp_path / 'images' / 'cut.png'
    Image.fromarray(noise(64)).save(cut)
    cut.write_bytes(cut.read_bytes()[:600])
    names = list(odd) + ['bomb.png', 'big.png', 'cut.png']
    ann = tmp_path / 'ann.jsonl'
    ann.write_text(''.join(json.dumps({'path': f'images/{n}', 'caption': n})
                           + '\n' for n in names))
    with pytest.raises(ValueError, match='image too large.*bomb.png '
                       r'\(Image size \(900000000 pixels\) exceeds'):
        CaptionedImageDataset(str(ann), str(tmp_path), PIPELINE)
    data = CaptionedImageDataset(str(ann), str(tmp_path), PIPELINE,
                                 on_error='skip')
    assert data.num_skipped == 3 and len(data) == len(odd)
    assert data._skipped['image too large'][0] == 2  # bomb.png, big.png
    for i in range(len(data)):
        img = data[i]['inputs']
        assert img.shape == (3, 16, 16), data.get_data_info(i)['img_path']
    assert data[1]['inputs'].min() == 255  # 16-bit white stays white
