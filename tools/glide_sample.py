"""Generate images with GLIDE and save them as a PNG grid.

Examples::

    # the shapes demo cascade, 32 px base + 32->64 upsampler
    # (checkpoints/glide_shapes-32.safetensors)
    python tools/glide_sample.py "a red circle in the top left on a black background"
    python tools/glide_sample.py "an oil painting of a corgi" \
        --config projects/glide/configs/glide_ddim-classifier-free_laion-64-256.py \
        --checkpoint glide_laion-64-256.pth --batch-size 4 --seed 0
    # inpainting (white mask pixels are kept, black ones generated)
    python tools/glide_sample.py "a corgi in a field" \
        --config projects/glide/configs/glide_ddim-classifier-free_laion-64-256-inpaint.py \
        --checkpoint glide-64-256-inpaint.pth --init-image grass.png --mask mask.png

Each prompt gets ``--batch-size`` samples (one row per prompt). Without
``--config`` the shapes demo cascade (``glide_shapes-32-64.py``) is used,
with its checkpoint when ``checkpoints/glide_shapes-32.safetensors`` exists.
Defaults of the guidance and the steps come from the config's
``model.test_cfg`` (what validation uses), else guidance 3 and the samplers'
configured respacing. The settings
actually used are written into the PNG's text metadata (key ``glide``); other
formats cannot hold them.
"""
import argparse
import json
import os
import pickle
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, ROOT)

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/glide_sample.py')

SAMPLERS = {
    'ancestral': 'GlideAncestralScheduler',
    'ddim': 'GlideDDIMScheduler',
    'dpm++2m': 'GlideDPMSolverScheduler',
}
CONFIG_DIR = os.path.join(ROOT, 'projects', 'glide', 'configs')
DEMO_CONFIG = os.path.join(CONFIG_DIR, 'glide_shapes-32-64.py')
DEMO_CHECKPOINT = os.path.join(ROOT, 'checkpoints',
                               'glide_shapes-32.safetensors')
DTYPES = ('float32', 'bfloat16', 'float16')


def fail(msg):
    """Stop with a one-line error (argparse's style)."""
    raise SystemExit(f'glide_sample.py: error: {msg}')


def _int_in(low, high=None):

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'not an int: {text!r}')
        if value < low or (high is not None and value > high):
            upper = 'inf' if high is None else high
            raise argparse.ArgumentTypeError(
                f'must be in [{low}, {upper}], got {value}')
        return value

    return parse


def _scale(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'not a number: {text!r}')
    if not 0 <= value < float('inf'):
        raise argparse.ArgumentTypeError(
            f'must be a finite number >= 0, got {text}')
    return value


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('prompts', nargs='+', help='one or more prompts')
    p.add_argument('--config', help='model config (default: the shapes demo '
                   'cascade, glide_shapes-32-64.py)')
    p.add_argument('--checkpoint', help='weights (.pth or .safetensors); '
                   'without it the weights are random (default: '
                   'checkpoints/glide_shapes-32.safetensors with the default '
                   'config, when that file exists)')
    p.add_argument('--out', default='outputs/glide.png',
                   help='output image (.png keeps the settings as metadata)')
    p.add_argument('--batch-size', type=_int_in(1), default=1,
                   help='samples per prompt')
    p.add_argument('--zoom', type=_int_in(1, 16), default=1,
                   help='enlarge the grid by this integer factor, pixels '
                   'repeated (e.g. 4 for a 32 px model; default: 1)')
    p.add_argument('--seed', type=_int_in(0, 2**64 - 1), default=0)
    p.add_argument('--steps', default=None,
                   help="base steps (int) or respacing ('100', 'ddim50')")
    p.add_argument('--steps-up', default=None,
                   help="upsampler steps or respacing ('fast27'); configs "
                   'with an upsampler only')
    p.add_argument('--guidance', type=_scale, default=None,
                   help='classifier-free guidance scale (1 = off; default: '
                   "the config's test_cfg, else 3)")
    p.add_argument('--negative-prompt', default=None,
                   help='replaces the empty prompt of the guidance')
    p.add_argument('--classifier-scale', type=_scale, default=None,
                   help="CLIP-guidance scale (CLIP configs; default: the "
                   "config's, 0 = off)")
    p.add_argument('--init-image', help='image to inpaint (inpainting '
                   'configs; with --mask)')
    p.add_argument('--mask', help='inpainting mask image: white = keep the '
                   'init image, black = generate')
    p.add_argument('--sampler', choices=sorted(SAMPLERS),
                   help='base sampler (default: the config\'s)')
    p.add_argument('--dtype', choices=DTYPES, default=None,
                   help="UNet precision (default: the config's, float32)")
    p.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def _steps(value):
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def check_out(path):
    """Fail before sampling on an output we cannot write; returns whether
    the format keeps the settings metadata."""
    from PIL import Image
    Image.init()
    ext = os.path.splitext(path)[1].lower()
    if os.path.isdir(path):
        fail(f'--out {path} is a folder; give an image file name such as '
             f'{os.path.join(path, "glide.png")}')
    if not ext:
        fail(f'--out {path} has no file extension; use .png (keeps the '
             'settings as metadata), or .jpg/.webp...')
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        fail(f'--out {path}: cannot write {ext} images; use .png')
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        fail(f'--out {path}: cannot create {folder} ({err.strerror})')
    if not os.access(folder, os.W_OK):
        fail(f'--out {path}: {folder} is not writable')
    if fmt != 'PNG':
        print(f'note: --out {path}: {fmt} files cannot hold the settings '
              'metadata, so the image will have none (use .png to keep '
              'them)', file=sys.stderr)
    return fmt == 'PNG'


def read_image(path, size, what, mode):
    """An image file as a (1, C, size, size) tensor in [0, 1]."""
    import numpy as np
    import torch
    from PIL import Image
    if not os.path.isfile(path):
        fail(f'{what} {path}: no such file')
    try:
        with Image.open(path) as img:
            img = img.convert(mode).resize(
                (size, size),
                Image.NEAREST if mode == 'L' else Image.BICUBIC)
    except OSError as err:
        fail(f'{what} {path}: not a readable image ({err})')
    array = np.asarray(img, dtype=np.float32) / 255
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


def save_png(image, path, settings):
    """Save a PIL image as PNG with ``settings`` as JSON text metadata
    (key ``glide``; read back with ``Image.open(path).text['glide']``)."""
    from PIL import PngImagePlugin
    info = PngImagePlugin.PngInfo()
    info.add_text('glide', json.dumps(settings))
    image.save(path, format='PNG', pnginfo=info)


def build_model(cfg, checkpoint, device):
    """mmagic's ``init_model`` without importing ``mmagic.apis`` (its
    inferencers take about 2 s to import)."""
    from mmengine.runner import load_checkpoint

    from mmagic.registry import MODELS
    model = MODELS.build(cfg.model)
    if checkpoint:
        load_checkpoint(model, checkpoint, map_location='cpu')
    model.cfg = cfg
    return model.to(device).eval()


def main(argv=None):
    args = parse_args(argv)
    keeps_settings = check_out(args.out)
    if args.config is None:
        args.config = DEMO_CONFIG
        if args.checkpoint is None and os.path.isfile(DEMO_CHECKPOINT):
            args.checkpoint = DEMO_CHECKPOINT
    if not os.path.isfile(args.config):
        fail(f'--config {args.config}: no such file')
    if args.checkpoint and not os.path.isfile(args.checkpoint):
        fail(f'--checkpoint {args.checkpoint}: no such file')
    if (args.init_image is None) != (args.mask is None):
        fail('--init-image and --mask go together (the image to inpaint and '
             'the region to keep)')

    import torch
    from mmengine import Config
    from mmengine.registry import init_default_scope
    from PIL import Image
    from torchvision.utils import make_grid

    import projects.glide.models  # noqa: F401  (registers GLIDE)
    from projects.glide.models import Glide

    try:
        device = torch.device(args.device)
    except RuntimeError:
        fail(f"--device {args.device}: not a device ('cpu', 'cuda', "
             "'cuda:1'...)")
    if device.type == 'cuda' and not torch.cuda.is_available():
        fail(f'--device {args.device}: no CUDA GPU is available here')
    init_default_scope('mmagic')
    cfg = Config.fromfile(args.config)
    model_cfg = cfg.model
    name = os.path.basename(args.config)
    inpainting = 'Inpaint' in model_cfg.unet.type
    has_up = model_cfg.get('unet_up') is not None
    if args.steps_up is not None and not has_up:
        fail(f'--steps-up: {name} has no upsampler (base model only)')
    if args.init_image and not inpainting:
        fail(f'--init-image/--mask need an inpainting config (*-inpaint.py); '
             f'{name} is not one')
    if inpainting and not args.init_image:
        print(f'note: {name} is an inpainting config but no --init-image/'
              '--mask were given: nothing is kept, the whole image is '
              'generated', file=sys.stderr)
    if args.classifier_scale and not model_cfg.get('classifier'):
        fail(f'--classifier-scale: {name} has no CLIP guide (classifier); '
             'use a CLIP config such as glide_clip-guided_laion-64x64.py')
    if model_cfg.get('classifier') and args.classifier_scale is None and \
            not model_cfg.get('classifier_scale'):
        print(f'note: {name} has a CLIP guide, off by default: '
              '--classifier-scale S turns it on', file=sys.stderr)
    if args.sampler:
        model_cfg.diffusion_scheduler.type = SAMPLERS[args.sampler]
    test_cfg = model_cfg.get('test_cfg') or {}
    guidance = args.guidance if args.guidance is not None else \
        test_cfg.get('guidance_scale', 3.0)
    steps = _steps(args.steps) if args.steps is not None else \
        test_cfg.get('num_inference_steps')
    steps_up = _steps(args.steps_up) if args.steps_up is not None else \
        test_cfg.get('num_inference_steps_up') if has_up else None
    try:  # the steps are checked now, not after loading the weights
        Glide._check_steps(steps, '--steps')
        Glide._check_steps(steps_up, '--steps-up')
    except ValueError as err:
        fail(err)
    out_size = (model_cfg.unet_up if has_up else model_cfg.unet).image_size
    init_image = mask = None
    if args.init_image:
        init_image = read_image(args.init_image, out_size, '--init-image',
                                'RGB') * 2 - 1
        mask = (read_image(args.mask, out_size, '--mask', 'L') >= 0.5).float()

    if not args.checkpoint:
        demo = (' (the demo weights belong at '
                f'{os.path.relpath(DEMO_CHECKPOINT)})'
                if os.path.abspath(args.config) == DEMO_CONFIG else '')
        print(f'WARNING: no --checkpoint: sampling {name} with RANDOM '
              'weights, so the images are noise. Pass --checkpoint FILE '
              f'(.pth or .safetensors){demo}.', file=sys.stderr)
    start = time.time()
    model = build_model(cfg, args.checkpoint, args.device)
    if args.dtype:
        model.set_precision(args.dtype)
    load_s = time.time() - start
    prompts = [p for p in args.prompts for _ in range(args.batch_size)]
    start = time.time()
    out = model.infer(
        prompt=prompts,
        guidance_scale=guidance,
        num_inference_steps=steps,
        num_inference_steps_up=steps_up,
        negative_prompt=args.negative_prompt,
        classifier_scale=args.classifier_scale,
        init_image=init_image,
        mask=mask,
        seed=args.seed,
        show_progress=not args.no_progress)
    sample_s = time.time() - start
    samples = out['samples']
    grid = make_grid((samples + 1) / 2, nrow=args.batch_size, padding=2)
    array = (grid.clamp(0, 1) * 255).round().to(torch.uint8)
    image = Image.fromarray(array.permute(1, 2, 0).cpu().numpy())
    if args.zoom > 1:
        image = image.resize((image.width * args.zoom,
                              image.height * args.zoom), Image.NEAREST)

    def stage(scheduler, spec):
        """The sampler and the steps a stage used."""
        spec = scheduler.default_respacing if spec is None else spec
        return type(scheduler).__name__, spec, len(scheduler.timesteps)

    settings = dict(prompts=args.prompts, batch_size=args.batch_size,
                    seed=args.seed, guidance=guidance,
                    negative_prompt=args.negative_prompt)
    settings['sampler'], settings['steps'], settings['num_steps'] = stage(
        model.diffusion_scheduler, steps)
    if has_up:
        settings['sampler_up'], settings['steps_up'], \
            settings['num_steps_up'] = stage(model.diffusion_scheduler_up,
                                             steps_up)
        settings['upsample_temp'] = model.upsample_temp
    if model.classifier is not None:
        settings['classifier_scale'] = (
            model.classifier_scale if args.classifier_scale is None else
            args.classifier_scale)
    settings.update(
        init_image=args.init_image, mask=args.mask, config=args.config,
        checkpoint=args.checkpoint or 'none (random weights)',
        dtype=str(next(model.unet.parameters()).dtype).replace('torch.', ''),
        device=args.device, threads=torch.get_num_threads(), zoom=args.zoom,
        seconds=round(sample_s, 2))
    if keeps_settings:
        save_png(image, args.out, settings)
    else:
        image.save(args.out)
    print(f'wrote {args.out}: {len(prompts)} samples of '
          f'{samples.shape[-1]}x{samples.shape[-2]} in {sample_s:.1f} s '
          f'(model loaded in {load_s:.1f} s)')
    return args.out


if __name__ == '__main__':
    from projects.glide.runtime import configure_threads
    configure_threads()
    try:
        main()
    except (ValueError, KeyError, FileNotFoundError, MemoryError,
            pickle.UnpicklingError) as err:
        fail(err)
