"""tools/web_demo.py: hostile uploads and prompts, through the worker and
the page's upload components: each gets the page's message or a documented
conversion, never a crash, a huge allocation or a traceback."""
import struct
import zlib

import gradio as gr
import numpy as np
import pytest
from gradio.data_classes import FileData
from PIL import Image

from projects.glide.checks import MAX_PROMPT_CHARS
from projects.glide.web.page import upload_editor, upload_image
from projects.glide.images import MAX_UPLOAD_PIXELS
from tests.tools import test_web_demo as web
from tests.tools.test_web_demo import GOOD, editor, with_

demo, inpaint_demo = web.demo, web.inpaint_demo  # the fixtures


def png_chunk(kind, data):
    return (struct.pack('>I', len(data)) + kind + data +
            struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))


def black_png(path, side):
    """A 1-bit black PNG of side x side pixels, written row by row: a
    30000 px one is 112 MB decoded, 110 kB on disk."""
    row = b'\0' * (1 + (side + 7) // 8)  # filter byte, then the bits
    pack = zlib.compressobj(9)
    data = b''.join(pack.compress(row) for _ in range(side)) + pack.flush()
    header = struct.pack('>IIBBBBB', side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', header) +
                     png_chunk(b'IDAT', data) + png_chunk(b'IEND', b''))
    return str(path)


def truncated_png(path):
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    Image.fromarray(noise).save(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    return str(path)


REFUSED = [
    ('bomb', lambda p: black_png(p / 'bomb.png', 30000),
     'The image is too large (Image size (900000000 pixels) exceeds limit'),
    ('too many pixels', lambda p: black_png(p / 'big.png', 4200),
     f'The image is 4200x4200 pixels: at most {MAX_UPLOAD_PIXELS:,} pixels '
     '(4096x4096) are accepted'),
    ('truncated', lambda p: truncated_png(p / 'cut.png'),
     'The image is truncated or damaged (image file is truncated'),
    ('not an image', lambda p: (p / 'a.png').write_text('hello') and str(
        p / 'a.png'), 'The image is not an image Pillow can read'),
    ('LAB', lambda p: Image.new('LAB', (8, 8)),
     'The image is in mode LAB, which is not accepted: save it as RGB'),
    ('HSV', lambda p: Image.new('HSV', (8, 8)),
     'The image is in mode HSV, which is not accepted'),
    ('not square', lambda p: np.zeros((40, 30, 3), np.uint8),
     'The image is 30x40: the model needs a square image'),
    ('float array', lambda p: np.zeros((8, 8, 3), np.float32),
     'The image must be 8-bit (uint8), got float32'),
]


@pytest.mark.parametrize('what, make, message', REFUSED,
                         ids=[r[0] for r in REFUSED])
def test_a_hostile_upload_gets_the_pages_message(demo, inpaint_demo,
                                                 tmp_path, what, make,
                                                 message):
    upload = make(tmp_path)
    errors = []
    with pytest.raises(gr.Error, match=None) as err:
        demo.edit(upload, 0.6, *GOOD)
    errors.append(err.value)
    with pytest.raises(gr.Error, match=None) as err:
        inpaint_demo.inpaint(dict(editor(), background=upload), *GOOD)
    errors.append(err.value)
    if isinstance(upload, str):  # a file, as the page's components get it
        with pytest.raises(gr.Error, match=None) as err:
            upload_editor().convert_and_format_image(FileData(path=upload))
        errors.append(err.value)
    for error in errors:
        assert error.message.startswith(message), error.message
        assert not error.print_exception


def test_the_edit_upload_reaches_the_worker_unread(tmp_path):
    bomb = black_png(tmp_path / 'bomb.png', 30000)
    assert upload_image().preprocess(FileData(path=bomb)) == bomb


def rgba(mode, colour):
    """A 24 px image of ``mode`` filled with ``colour``."""
    return Image.new(mode, (24, 24), colour)


def palette():
    image = Image.new('P', (24, 24), 1)
    image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    return image


#: Each mode's image, and the RGB the model gets.
CONVERTED = [
    ('CMYK', lambda p: rgba('CMYK', (0, 255, 255, 0)), (255, 0, 0)),
    ('16-bit gray', lambda p: Image.fromarray(
        np.full((24, 24), 32896, np.uint16), 'I;16'), (128, 128, 128)),
    ('16-bit gray PNG', lambda p: save(Image.fromarray(
        np.full((24, 24), 65535, np.uint16), 'I;16'), p / 'g16.png'),
     (255, 255, 255)),
    ('16-bit gray array', lambda p: np.full((24, 24), 257 * 40, np.uint16),
     (40, 40, 40)),
    ('palette', lambda p: palette(), (10, 200, 30)),
    ('grayscale', lambda p: rgba('L', 77), (77, 77, 77)),
    ('1-bit', lambda p: rgba('1', 1), (255, 255, 255)),
    ('RGBA, half transparent', lambda p: rgba('RGBA', (0, 0, 0, 128)),
     (127, 127, 127)),
    ('RGBA file, transparent', lambda p: save(
        rgba('RGBA', (0, 0, 255, 0)), p / 'clear.png'), (255, 255, 255)),
    ('CMYK TIFF', lambda p: save(rgba('CMYK', (255, 0, 255, 0)),
                                 p / 'c.tif'), (0, 255, 0)),
]


def save(image, path):
    image.save(path)
    return str(path)


@pytest.mark.parametrize('what, make, rgb', CONVERTED,
                         ids=[c[0] for c in CONVERTED])
def test_every_image_mode_is_converted_to_rgb_on_white(demo, tmp_path, what,
                                                       make, rgb):
    init = demo.edit_input(make(tmp_path))
    assert init.shape == (1, 3, 32, 32)
    pixels = ((init[0] + 1) * 127.5).permute(1, 2, 0).numpy()
    assert np.abs(pixels - np.array(rgb)).max() <= 1.5, (what, pixels[0, 0])


def test_a_mask_of_another_size_is_resized_to_the_image(inpaint_demo):
    value = editor((40, 40))
    small = np.zeros((20, 20, 4), np.uint8)
    small[:10] = (255, 0, 255, 255)  # the top half, at half the size
    value['layers'] = [small]
    _, mask = inpaint_demo.inpaint_inputs(value)
    assert (mask[..., :16, :] == 0).all() and (mask[..., 16:, :] == 1).all()


@pytest.mark.parametrize('index, text, message', [
    (0, 'a' * 10_000, f'Prompt has 10000 characters; at most '
     f'{MAX_PROMPT_CHARS} are accepted'),
    (1, 'b' * (MAX_PROMPT_CHARS + 1), 'Negative prompt has 1001 characters'),
    (0, 'a red\x00 cube', 'Prompt has a control character U+0000 at '
     'position 6'),
    (0, '\x1b[31ma red cube', 'Prompt has a control character U+001B at '
     'position 1'),
    (1, 'blurry\x7f', 'Negative prompt has a control character U+007F'),
    (0, '\x08' * 50, 'Prompt has a control character U+0008'),
])
def test_a_hostile_prompt_gets_the_pages_message(demo, index, text, message):
    with pytest.raises(gr.Error, match=None) as err:
        demo.generate(*with_(index, text))
    assert err.value.message.startswith(message), err.value.message


def test_tabs_and_line_breaks_in_a_prompt_are_spaces(demo):
    checked = demo.check(*with_(0, 'a red\tcube\r\nat night'))
    assert checked['prompt'] == 'a red cube  at night'
    prompt = 'x' * MAX_PROMPT_CHARS  # the longest accepted
    assert demo.check(*with_(0, prompt))['prompt'] == prompt
