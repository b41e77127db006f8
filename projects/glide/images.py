"""Images a user gives (the web page's uploads, the CLI's ``--init-image``
and ``--mask``): read with limits, then converted.

The rules (``docs/web.md``, ``docs/reliability.md``):

* An image may have at most :data:`MAX_UPLOAD_PIXELS` pixels (4096 x 4096).
  The size is read from the file's header and checked before anything is
  decoded, so a decompression bomb (a small file that decodes to gigabytes)
  is refused without being decoded.
* A file that is not an image, or is truncated or damaged, is refused.
* Every mode becomes 8-bit RGBA: 16- and 32-bit grayscale is scaled to 8
  bits (65535 -> 255); palette, 1-bit, grayscale, CMYK and YCbCr images are
  converted with Pillow; other modes (LAB, HSV) are refused.
  The RGB the model sees is the image composited on white (a transparent
  pixel is white).

Nothing here needs Gradio: errors are :class:`UploadError` (a
``ValueError``), which the page shows as its own message and
:func:`projects.glide.api.read_image` prefixes with the file's name.
"""
import io
import os
import warnings
import zlib

import numpy as np
from PIL import Image, UnidentifiedImageError

MAX_UPLOAD_SIDE = 4096
#: The largest image accepted, in pixels (4096 x 4096).
MAX_UPLOAD_PIXELS = MAX_UPLOAD_SIDE**2
#: Modes read as 16- or 32-bit integer grayscale (scaled to 8 bits).
WIDE_GRAY = ('I', 'I;16', 'I;16B', 'I;16L', 'I;16N')
#: The other modes accepted (converted by Pillow); LAB and HSV are not
#: (Pillow would read their channels as RGB).
MODES = ('1', 'L', 'LA', 'P', 'PA', 'RGB', 'RGBA', 'RGBX', 'CMYK', 'YCbCr',
         'F')
#: The errors Pillow raises decoding a damaged file.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error)


class UploadError(ValueError):
    """An uploaded image that is refused; the message says why and what is
    accepted."""


def check_pixels(width, height, name):
    """Refuse an image of more than :data:`MAX_UPLOAD_PIXELS` pixels."""
    if width * height > MAX_UPLOAD_PIXELS:
        raise UploadError(
            f'The {name} is {width}x{height} pixels: at most '
            f'{MAX_UPLOAD_PIXELS:,} pixels ({MAX_UPLOAD_SIDE}x'
            f'{MAX_UPLOAD_SIDE}) are accepted; make it smaller first.')


def _from_array(array, name):
    """A numpy image (H, W) or (H, W, 1 to 4), as Gradio gives it, as a
    Pillow image."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3
                                    and array.shape[2] not in (3, 4)):
        raise UploadError(f'The {name} must be an image (H, W) or (H, W, 3 '
                          f'or 4), got an array of shape {array.shape}.')
    check_pixels(array.shape[1], array.shape[0], name)
    if array.dtype == np.uint16 and array.ndim == 2:
        return Image.fromarray(array, 'I;16')
    if array.dtype != np.uint8:
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        else:
            raise UploadError(f'The {name} must be 8-bit (uint8), got '
                              f'{array.dtype}.')
    return Image.fromarray(array)


def _read_file(source, name):
    """A file (path or bytes) decoded, within the limits."""
    try:
        file = open(source, 'rb') if isinstance(
            source, (str, os.PathLike)) else io.BytesIO(bytes(source))
    except OSError as err:
        raise UploadError(f'The {name} could not be read ({err}).') from None
    with file, warnings.catch_warnings():
        warnings.simplefilter('error', Image.DecompressionBombWarning)
        try:
            image = Image.open(file)
        except (Image.DecompressionBombError,
                Image.DecompressionBombWarning) as err:
            raise UploadError(
                f'The {name} is too large ({err}): at most '
                f'{MAX_UPLOAD_PIXELS:,} pixels ({MAX_UPLOAD_SIDE}x'
                f'{MAX_UPLOAD_SIDE}) are accepted.') from None
        except UnidentifiedImageError:
            raise UploadError(f'The {name} is not an image Pillow can read '
                              '(PNG, JPEG, WebP, ...).') from None
        check_pixels(*image.size, name)
        try:
            image.load()
        except DECODE_ERRORS as err:
            raise UploadError(f'The {name} is truncated or damaged ({err}): '
                              'save it again and upload that.') from None
    return image


def open_image(source, name='image'):
    """An uploaded image as a decoded Pillow image, within the limits.

    Args:
        source (str | os.PathLike | bytes | PIL.Image.Image | np.ndarray):
            A file (path or content) or an image already decoded.
        name (str): What the image is, for the errors.

    Raises:
        UploadError: Too many pixels, not an image, truncated or damaged.
    """
    if isinstance(source, Image.Image):
        check_pixels(*source.size, name)
        return source
    if isinstance(source, np.ndarray):
        return _from_array(source, name)
    return _read_file(source, name)


def to_rgba(image, name='image'):
    """A Pillow image of any mode as an 8-bit RGBA array (H, W, 4); 16- and
    32-bit grayscale is scaled to 8 bits.

    Raises:
        UploadError: A mode not in :data:`WIDE_GRAY` or :data:`MODES`.
    """
    if image.mode not in WIDE_GRAY + MODES:
        raise UploadError(f'The {name} is in mode {image.mode}, which is not '
                          'accepted: save it as RGB (or RGBA, grayscale, '
                          'palette, CMYK).')
    if image.mode in WIDE_GRAY:
        wide = np.asarray(image, dtype=np.float64) / 257
        image = Image.fromarray(wide.round().clip(0, 255).astype(np.uint8))
    elif image.mode == 'F':
        image = Image.fromarray(
            np.asarray(image).round().clip(0, 255).astype(np.uint8))
    return np.asarray(image.convert('RGBA'))


def on_white(rgba):
    """An RGBA array (H, W, 4) composited on white: RGB (H, W, 3) uint8."""
    alpha = rgba[..., 3:].astype(np.float32) / 255
    rgb = rgba[..., :3].astype(np.float32) * alpha + 255 * (1 - alpha)
    return rgb.round().astype(np.uint8)


def read_rgba(source, name='image'):
    """:func:`open_image` then :func:`to_rgba`."""
    return to_rgba(open_image(source, name), name)


def square_rgb(rgba, size, name='image'):
    """A square RGBA array as RGB on white, resized (bicubic) to ``size``;
    a non-square one is refused (not stretched or cropped).

    Returns:
        np.ndarray: (size, size, 3) float32 in [-1, 1].
    """
    height, width = rgba.shape[:2]
    if height != width:
        raise UploadError(f'The {name} is {width}x{height}: the model needs a '
                          f'square image (it is resized to {size}x{size}); '
                          'crop it square first.')
    rgb = Image.fromarray(on_white(rgba)).resize((size, size), Image.BICUBIC)
    return np.asarray(rgb, dtype=np.float32) / 127.5 - 1
