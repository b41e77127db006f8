"""The small public API that the command-line tools and the web page share.

Build a model from a config and its weights, read an input image, save a
PNG with the settings that made it, the sampler and precision tables, and
the prompt vocabulary of the models that know a closed one. Light to import:
torch, mmengine and mmagic are imported by the functions that need them.

Example::

    >>> from projects.glide.api import (DEMO_CHECKPOINT, DEMO_CONFIG,
    ...                                 build_model)
    >>> model = build_model(DEMO_CONFIG, DEMO_CHECKPOINT, sampler='ddim')
    >>> samples = model.infer(prompt='a large red circle in the top left '
    ...                       'corner, black background', seed=0)['samples']
"""
import copy
import json
import os
import re
from typing import Dict, FrozenSet, List, Optional

from .files import atomic_write, verify_sha256

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
#: The shapes demo cascade (32 px base model, 32->64 upsampler) and the
#: weights that ship with the repository.
DEMO_CONFIG = os.path.join(ROOT, 'projects', 'glide', 'configs',
                           'glide_upsampler_2xb16-1k_shapes-32-64.py')
DEMO_CHECKPOINT = os.path.join(ROOT, 'checkpoints',
                               'glide_shapes-32.safetensors')
#: The SHA-256 of the shipped weights (``sha256sum`` format): a listed file
#: is checked before it is loaded.
CHECKSUMS = os.path.join(ROOT, 'checkpoints', 'SHA256SUMS')
#: The largest image (in pixels) of a dataset folder: 8192 x 8192. A larger
#: one (a decompression bomb: a small file of a huge image) is refused
#: before it is decoded (:func:`read_image` takes at most 4096 x 4096, the
#: web page's limit: ``projects.glide.images``).
MAX_IMAGE_PIXELS = 8192 * 8192
#: Sampler name (command line, web page) -> scheduler type.
SAMPLERS = {
    'ancestral': 'GlideAncestralScheduler',
    'ddim': 'GlideDDIMScheduler',
    'dpm++2m': 'GlideDPMSolverScheduler',
}
#: The UNet precisions a model can sample in.
DTYPES = ('float32', 'bfloat16', 'float16')
#: The config key that names a model's closed prompt vocabulary
#: (``prompt_vocabulary = 'shapes'``; see :func:`prompt_vocabulary`).
VOCABULARY_KEY = 'prompt_vocabulary'


def build_model(config, checkpoint: Optional[str] = None,
                device: str = 'cpu', sampler: Optional[str] = None,
                dtype: Optional[str] = None):
    """A GLIDE model in eval mode, as mmagic's ``init_model`` builds it
    (without importing ``mmagic.apis``, whose inferencers take about 2 s).

    Args:
        config (str | mmengine.Config): The config file, or a loaded config
            (not modified).
        checkpoint (str, optional): Weights (.pth or .safetensors); without
            them the weights are random. A file listed in :data:`CHECKSUMS`
            (the shipped weights) is checked against its SHA-256 first.
        device (str): Torch device.
        sampler (str, optional): A name of :data:`SAMPLERS` replacing the
            config's base sampler (its other settings kept).
        dtype (str, optional): A name of :data:`DTYPES` for the UNets
            (default: the config's).

    Returns:
        Glide: the model, with the config as ``model.cfg``.

    Raises:
        ValueError: ``sampler`` or ``dtype`` is not a known name, or the
            checkpoint is damaged (a shipped file whose SHA-256 differs, a
            truncated or corrupt file), naming the file.
    """
    from mmengine import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import load_checkpoint

    import projects.glide.models  # noqa: F401  (registers GLIDE)
    from mmagic.registry import MODELS
    if sampler is not None and sampler not in SAMPLERS:
        raise ValueError(f'sampler must be one of {", ".join(SAMPLERS)}, '
                         f'got {sampler!r}')
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(f'dtype must be one of {", ".join(DTYPES)}, got '
                         f'{dtype!r}')
    cfg = (Config.fromfile(config) if isinstance(config, (str, os.PathLike))
           else copy.deepcopy(config))
    if sampler is not None:
        cfg.model.diffusion_scheduler.type = SAMPLERS[sampler]
    init_default_scope('mmagic')
    model = MODELS.build(cfg.model)
    if checkpoint:
        verify_sha256(checkpoint, CHECKSUMS)
        load_checkpoint(model, checkpoint, map_location='cpu')
    if dtype is not None:
        model.set_precision(dtype)
    model.cfg = cfg
    return model.to(device).eval()


def read_image(path: str, size: int, mode: str = 'RGB',
               name: str = 'image'):
    """A square image file as a (1, C, size, size) float tensor in [0, 1].

    The rules are the web page's (:mod:`projects.glide.images`): an image
    over 4096 x 4096 pixels is refused before it is decoded, a truncated or
    damaged one is refused, every mode is converted (transparency
    composited on white, 16-bit greyscale scaled to 8 bits, CMYK and
    palettes by Pillow) and a non-square image is refused, not stretched or
    cropped. A mask of another size than its image is resized to ``size``
    as the image is.

    Args:
        path (str): The image file.
        size (int): The side it is resized to (bicubic; nearest for masks).
        mode (str): ``'RGB'`` (3 channels) or ``'L'`` (1 channel, resized
            with the nearest pixel, as masks are).
        name (str): What the image is, for the errors (``'--mask'``).

    Raises:
        FileNotFoundError: No such file.
        ValueError: Not a readable image (truncated, corrupt, not an
            image), too large, or not square; the message names ``path``.
    """
    import numpy as np
    import torch
    from PIL import Image

    from .images import UploadError, on_white, read_rgba
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{name} {path}: no such file')
    try:
        rgba = read_rgba(path, 'image')
    except UploadError as err:
        raise ValueError(f'{name} {path}: {err}') from None
    height, width = rgba.shape[:2]
    if width != height:
        raise ValueError(
            f'{name} {path} is {width}x{height}: the model needs a square '
            f'image (it is resized to {size}x{size}); crop it square first')
    img = Image.fromarray(on_white(rgba)).convert(mode).resize(
        (size, size), Image.NEAREST if mode == 'L' else Image.BICUBIC)
    array = np.asarray(img, dtype=np.float32) / 255
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()

def save_png(image, path: str, settings: Dict) -> None:
    """Save a PIL image as PNG with ``settings`` as JSON text metadata.

    The file is written whole or not at all
    (:func:`projects.glide.files.atomic_write`: a temporary name in the
    same folder, then renamed), so that ``path`` is never a partly written
    image. Read the settings back with
    ``json.loads(Image.open(path).text['glide'])``.

    Args:
        image (PIL.Image.Image): The image.
        path (str): The PNG to write (replaced if it exists).
        settings (dict): JSON-serialisable settings (key ``glide``).

    Raises:
        projects.glide.files.WriteError: It could not be written (a
            ``DiskFullError`` when the disk is full); the message names
            ``path``, and nothing is left behind.
    """
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text('glide', json.dumps(settings))
    with atomic_write(path) as temporary:
        image.save(temporary, format='PNG', pnginfo=info)


def _stage(scheduler, steps, suffix: str) -> Dict:
    """The sampler and the steps a stage used (``steps`` None: the
    scheduler's default respacing)."""
    steps = scheduler.default_respacing if steps is None else steps
    return {f'sampler{suffix}': type(scheduler).__name__,
            f'steps{suffix}': steps,
            f'num_steps{suffix}': len(scheduler.timesteps)}


def sampling_settings(model, guidance: float,
                      negative_prompt: Optional[str] = None,
                      steps=None, steps_up=None,
                      classifier_scale: Optional[float] = None) -> Dict:
    """The settings a call of ``model.infer`` used, for an image's metadata.

    Only the settings that took effect are recorded: the negative prompt
    when guidance is on (``guidance != 1``), the CLIP-guidance scale when
    the model has a CLIP guide and the scale is > 0, the upsampler's
    sampler, steps and temperature when the model has an upsampler. Call
    it after ``infer`` (the number of steps is read from the schedulers).

    Args:
        model (Glide): The model that sampled.
        guidance (float): The classifier-free guidance scale used.
        negative_prompt (str, optional): The negative prompt passed.
        steps, steps_up: The steps passed for the base model and the
            upsampler (None: the scheduler's default).
        classifier_scale (float, optional): The CLIP-guidance scale passed
            (None: the model's default).

    Returns:
        dict: ``guidance``, ``sampler``, ``steps``, ``num_steps``, and
        where used ``negative_prompt``, ``sampler_up``, ``steps_up``,
        ``num_steps_up``, ``upsample_temp``, ``classifier_scale``.
    """
    settings = dict(guidance=guidance)
    if negative_prompt is not None and guidance != 1:
        settings['negative_prompt'] = negative_prompt
    settings.update(_stage(model.diffusion_scheduler, steps, ''))
    if model.unet_up is not None:
        settings.update(_stage(model.diffusion_scheduler_up, steps_up, '_up'))
        settings['upsample_temp'] = model.upsample_temp
    scale = (model.classifier_scale if classifier_scale is None else
             classifier_scale)
    if model.classifier is not None and scale > 0:
        settings['classifier_scale'] = scale
    return settings


# ------------------------------------------------------- prompt vocabulary
def _words(text: str) -> List[str]:
    """The lower-case words of a text, in order (punctuation dropped)."""
    return re.findall(r"[^\W_]+(?:'[^\W_]+)*", text.lower())


def shapes_vocabulary() -> FrozenSet[str]:
    """Every word of the shapes dataset's captions: the words of its
    caption templates and of the attribute values they are filled with
    (``projects.glide.shapes.scenes``). Synonyms that the judge reads but
    no caption contains (``grey``, ``big``) are not in it."""
    from projects.glide.shapes import scenes
    values = [*scenes.SHAPES, *scenes.COLOURS, *scenes.SIZES,
              *scenes.POSITIONS, *scenes.BACKGROUNDS]
    words = set()
    for text in [*scenes.TEMPLATES, *values]:
        words.update(_words(re.sub(r'\{\w+\}', ' ', text)))
    return frozenset(words)


#: The closed vocabularies a config can name with ``prompt_vocabulary``.
VOCABULARIES = {'shapes': shapes_vocabulary}


def prompt_vocabulary(cfg) -> Optional[FrozenSet[str]]:
    """The closed vocabulary of a config's model, or None (any prompt).

    A config declares it with a top-level key naming one of
    :data:`VOCABULARIES`, e.g. ``prompt_vocabulary = 'shapes'`` for a model
    trained on the shapes captions only.

    Args:
        cfg (mmengine.Config | dict): The config.

    Raises:
        ValueError: The key names no known vocabulary.
    """
    name = cfg.get(VOCABULARY_KEY)
    if name is None:
        return None
    if name not in VOCABULARIES:
        raise ValueError(f'{VOCABULARY_KEY} must be one of '
                         f'{", ".join(sorted(VOCABULARIES))} or unset, got '
                         f'{name!r}')
    return VOCABULARIES[name]()


def unknown_words(prompt: str, vocabulary) -> List[str]:
    """The words of ``prompt`` outside ``vocabulary``, each once, in order.

    Args:
        prompt (str): A prompt (case and punctuation do not matter).
        vocabulary (Collection[str] | None): Lower-case words; None accepts
            every word.
    """
    if vocabulary is None:
        return []
    unknown = []
    for word in _words(prompt):
        if word not in vocabulary and word not in unknown:
            unknown.append(word)
    return unknown
