r"""Generate images with GLIDE and save them as a PNG grid.

Examples::

    # the shapes demo cascade, 32 px base + 32->64 upsampler
    # (checkpoints/glide_shapes-32.safetensors)
    python tools/glide_sample.py \
        "a large red circle in the top left corner, black background"
    python tools/glide_sample.py "an oil painting of a corgi" \
        --config projects/glide/configs/glide_ddim-classifier-free_laion-64-256.py \
        --checkpoint glide_laion-64-256.pth --batch-size 4 --seed 0
    # inpainting (white mask pixels are kept, black ones generated)
    python tools/glide_sample.py "a corgi in a field" \
        --config projects/glide/configs/glide_inpaint-classifier-free_laion-64-256.py \
        --checkpoint glide-64-256-inpaint.pth --init-image grass.png --mask mask.png
    # image-to-image editing (SDEdit): noise the image to 0.6 T, redraw it
    python tools/glide_sample.py "a large blue circle in the top left corner, \
        black background" --init-image red_circle.png --strength 0.6
    # with a LoRA adapter (tools/train_lora.py), at scale 0.8
    python tools/glide_sample.py "a large purple square ..." \
        --lora purple.safetensors:0.8

Each prompt gets --batch-size samples (one row per prompt). Without --config
the shapes demo cascade is used, with its checkpoint when
checkpoints/glide_shapes-32.safetensors exists. The guidance and the steps
default to the config's model.test_cfg (what validation uses), else guidance
3 and the samplers' configured respacing. The settings that were used (and
only those) are written into the PNG's text metadata (key "glide"); other
formats cannot hold them. A model that knows only a closed vocabulary (the
shapes models) warns about the words of a prompt it has never seen.
"""
import argparse
import os
import pickle
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, ROOT)

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/glide_sample.py')

from projects.glide.api import (DEMO_CHECKPOINT, DEMO_CONFIG,  # noqa: E402
                                DTYPES, SAMPLERS, build_model,
                                prompt_vocabulary, read_image,
                                sampling_settings, save_png, unknown_words)
from projects.glide.files import WriteError, atomic_write  # noqa: E402


def fail(msg):
    """Stop with a one-line error (argparse's style)."""
    raise SystemExit(f'glide_sample.py: error: {msg}')


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's lines and shows every default that is a
    value (a default of None is described by the option's help)."""

    def _get_help_string(self, action):
        text = action.help or ''
        default = action.default
        if default is None or default is False or \
                default is argparse.SUPPRESS or '(default' in text:
            return text
        return f'{text} (default: %(default)s)'


def make_parser():
    demo = os.path.basename(DEMO_CONFIG)
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument('prompts', nargs='+', help='one or more prompts')
    p.add_argument('--separator', help="split each prompt argument at this "
                   "string, e.g. ';' (pieces stripped, empty ones dropped): "
                   'one argument then holds several prompts')
    p.add_argument('--config', help='model config (default: the shapes demo '
                   f'cascade, {demo})')
    p.add_argument('--checkpoint', help='weights (.pth or .safetensors); '
                   'without it the weights are random (default: '
                   f'{os.path.relpath(DEMO_CHECKPOINT, ROOT)} with the '
                   'default config, when that file exists)')
    p.add_argument('--out', default='outputs/glide.png',
                   help='output image (.png keeps the settings as metadata)')
    p.add_argument('--batch-size', type=int, default=1,
                   help='samples per prompt')
    p.add_argument('--zoom', type=int, default=1,
                   help='enlarge the grid by this integer factor (1 to 16), '
                   'pixels repeated (e.g. 4 for a 32 px model)')
    p.add_argument('--seed', type=int, default=0,
                   help='random seed, 0 to 2**64 - 1')
    p.add_argument('--steps', default=None,
                   help="base steps (int) or respacing ('100', 'ddim50'; "
                   "default: the config's)")
    p.add_argument('--steps-up', default=None,
                   help="upsampler steps or respacing ('fast27'; default: "
                   "the config's); configs with an upsampler only")
    p.add_argument('--guidance', type=float, default=None,
                   help='classifier-free guidance scale, >= 0 (1 = off; '
                   "default: the config's test_cfg, else 3)")
    p.add_argument('--negative-prompt', default=None,
                   help='replaces the empty prompt of the guidance (unused '
                   'with --guidance 1)')
    p.add_argument('--classifier-scale', type=float, default=None,
                   help="CLIP-guidance scale, >= 0 (CLIP configs; default: "
                   "the config's, 0 = off)")
    p.add_argument('--init-image', help='square image to inpaint '
                   '(inpainting configs; with --mask) or to edit (with '
                   '--strength)')
    p.add_argument('--mask', help='square inpainting mask: white = keep the '
                   'init image, black = generate')
    p.add_argument('--strength', type=float, default=None,
                   help='image-to-image editing (SDEdit) of --init-image, '
                   'in (0, 1]: how far it is noised before it is redrawn '
                   'under the prompt (small keeps the layout, 1 ignores '
                   'the image)')
    p.add_argument('--lora', action='append', default=[],
                   metavar='PATH[:SCALE]',
                   help='a LoRA adapter file (tools/train_lora.py) to add, '
                   'times SCALE (default 1); repeat for several')
    p.add_argument('--sampler', choices=sorted(SAMPLERS),
                   help="base sampler (default: the config's)")
    p.add_argument('--dtype', choices=DTYPES, default=None,
                   help="UNet precision (default: the config's, float32)")
    p.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    p.add_argument('--no-progress', action='store_true',
                   help='no progress bar')
    return p


def lora_spec(text):
    """``PATH[:SCALE]`` as (path, scale); the scale is any finite number
    (1 when absent)."""
    from projects.glide.checks import check_float
    path, _, scale = text.rpartition(':')
    try:
        value = float(scale)
    except ValueError:
        return text, 1.0
    if not path:
        raise ValueError(f'--lora {text}: expected PATH or PATH:SCALE')
    return path, check_float(value, f'--lora {text}: the scale')


def parse_args(argv=None):
    """The parsed arguments, numbers range-checked (projects.glide.checks)
    and prompts split at ``--separator``."""
    from projects.glide.checks import (check_float, check_int, check_scale,
                                       check_seed)
    p = make_parser()
    args = p.parse_args(argv)
    try:
        args.lora = [lora_spec(spec) for spec in args.lora]
        if args.strength is not None:
            check_float(args.strength, '--strength', 0, 1, low_open=True)
        check_int(args.batch_size, '--batch-size', 1)
        check_int(args.zoom, '--zoom', 1, 16)
        check_seed(args.seed, '--seed')
        for flag in ('guidance', 'classifier_scale'):
            if getattr(args, flag) is not None:
                check_scale(getattr(args, flag), '--' + flag.replace('_', '-'))
    except ValueError as err:
        p.error(str(err))
    if args.separator is not None:
        if not args.separator:
            p.error('--separator must not be empty')
        args.prompts = [piece.strip() for text in args.prompts
                        for piece in text.split(args.separator)
                        if piece.strip()]
        if not args.prompts:
            p.error(f'no prompt left after splitting at {args.separator!r}')
    return args


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


def check_files(args):
    """The config and checkpoint defaults, and the files that must exist."""
    if args.config is None:
        args.config = DEMO_CONFIG
        if args.checkpoint is None and os.path.isfile(DEMO_CHECKPOINT):
            args.checkpoint = DEMO_CHECKPOINT
    if not os.path.isfile(args.config):
        fail(f'--config {args.config}: no such file')
    if args.checkpoint and not os.path.isfile(args.checkpoint):
        fail(f'--checkpoint {args.checkpoint}: no such file')
    if args.mask is not None and args.init_image is None:
        fail('--mask needs --init-image (the image to inpaint)')
    if args.strength is not None and args.init_image is None:
        fail('--strength needs --init-image (the image to edit)')
    if args.init_image is not None and (args.mask is None) == \
            (args.strength is None):
        fail('--init-image goes with --mask (inpainting) or with '
             '--strength (editing), one of them')
    for path, _ in args.lora:
        if not os.path.isfile(path):
            fail(f'--lora {path}: no such file')


def check_device(name):
    """The torch device named by ``--device``."""
    import torch
    try:
        device = torch.device(name)
    except RuntimeError:
        fail(f"--device {name}: not a device ('cpu', 'cuda', 'cuda:1'...)")
    if device.type == 'cuda' and not torch.cuda.is_available():
        fail(f'--device {name}: no CUDA GPU is available here')
    return device


def _steps(text):
    """A ``--steps`` value: an int when it is all digits, else a string."""
    if text is None:
        return None
    return int(text) if text.isdigit() else text


def check_against_config(args, cfg):
    """Fail on flags the config cannot use; print what the user should
    know (a CLIP guide that is off, an inpainting config without an
    image, a negative prompt that guidance 1 ignores)."""
    model_cfg, name = cfg.model, os.path.basename(args.config)
    inpainting = 'Inpaint' in model_cfg.unet.type
    if args.steps_up is not None and model_cfg.get('unet_up') is None:
        fail(f'--steps-up: {name} has no upsampler (base model only)')
    if args.mask and not inpainting:
        fail(f'--init-image/--mask need an inpainting config (*-inpaint.py); '
             f'{name} is not one')
    if args.strength is not None and inpainting:
        fail(f'--strength: {name} is an inpainting config; edit with a text '
             'config, or inpaint with --mask')
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


def sampling_options(args, cfg):
    """Guidance and steps: the flags, else the config's ``test_cfg``
    (guidance 3 and the samplers' respacing without one); the steps are
    checked now, not after loading the weights."""
    from projects.glide.checks import check_steps
    model_cfg = cfg.model
    test_cfg = model_cfg.get('test_cfg') or {}
    has_up = model_cfg.get('unet_up') is not None
    guidance = args.guidance if args.guidance is not None else \
        test_cfg.get('guidance_scale', 3.0)
    steps = _steps(args.steps) if args.steps is not None else \
        test_cfg.get('num_inference_steps')
    steps_up = _steps(args.steps_up) if args.steps_up is not None else \
        test_cfg.get('num_inference_steps_up') if has_up else None
    scheduler = model_cfg.diffusion_scheduler
    scheduler_up = model_cfg.get('diffusion_scheduler_up') or scheduler
    try:
        check_steps(steps, '--steps',
                    scheduler.get('num_train_timesteps', 1000))
        check_steps(steps_up, '--steps-up',
                    scheduler_up.get('num_train_timesteps', 1000))
    except ValueError as err:
        fail(err)
    if args.negative_prompt is not None and guidance == 1:
        print('note: --negative-prompt is not used with guidance 1 (no '
              'classifier-free guidance), so it is not recorded either',
              file=sys.stderr)
    return dict(guidance_scale=guidance, num_inference_steps=steps,
                num_inference_steps_up=steps_up)


def image_inputs(args, cfg):
    """``init_image`` in [-1, 1] at the output size and ``mask`` (1 =
    keep, inpainting only), or None and None without ``--init-image``."""
    if not args.init_image:
        return None, None
    model_cfg = cfg.model
    size = (model_cfg.get('unet_up') or model_cfg.unet).image_size
    try:
        init_image = read_image(args.init_image, size, 'RGB', '--init-image')
        mask = read_image(args.mask, size, 'L', '--mask') \
            if args.mask else None
    except (ValueError, FileNotFoundError) as err:
        fail(err)
    return init_image * 2 - 1, None if mask is None else (mask >= 0.5).float()


def load_adapters(model, specs):
    """Add the ``--lora`` adapters; a file that does not fit the model
    stops with the error naming it and the layer."""
    for path, scale in specs:
        try:
            model.load_lora(path, scale=scale)
        except (ValueError, KeyError) as err:
            fail(f'--lora: {err}')


def warn_about_prompts(args, cfg):
    """Warn about the words of a prompt outside the model's closed
    vocabulary (``prompt_vocabulary`` in the config), and about random
    weights."""
    name = os.path.basename(args.config)
    vocabulary = prompt_vocabulary(cfg)
    for prompt in args.prompts:
        words = unknown_words(prompt, vocabulary)
        if words:
            print(f'WARNING: {name} knows only the words of its '
                  f'{cfg.get("prompt_vocabulary")} captions; "{prompt}" has '
                  f'words it has never seen: {", ".join(words)}. They will '
                  'not show in the image.', file=sys.stderr)
    if not args.checkpoint:
        demo = (' (the demo weights belong at '
                f'{os.path.relpath(DEMO_CHECKPOINT)})'
                if os.path.abspath(args.config) == DEMO_CONFIG else '')
        print(f'WARNING: no --checkpoint: sampling {name} with RANDOM '
              'weights, so the images are noise. Pass --checkpoint FILE '
              f'(.pth or .safetensors){demo}.', file=sys.stderr)


# The grid lines' colour: a slate blue, visible on black, white and gray
# backgrounds and unlike every colour the shapes captions name.
GRID_RGB = (0.30, 0.45, 0.60)


def to_grid(samples, per_row, zoom):
    """Samples in [-1, 1] as one PIL image, ``per_row`` per row, 2 px
    grid lines (:data:`GRID_RGB`), enlarged ``zoom`` times (pixels
    repeated)."""
    import torch
    from PIL import Image
    from torchvision.utils import make_grid
    grid = make_grid((samples + 1) / 2, nrow=per_row, padding=2)
    lines = make_grid(torch.ones_like(samples), nrow=per_row, padding=2) == 0
    grid = torch.where(lines, torch.tensor(GRID_RGB).view(3, 1, 1), grid)
    array = (grid.clamp(0, 1) * 255).round().to(torch.uint8)
    image = Image.fromarray(array.permute(1, 2, 0).cpu().numpy())
    if zoom > 1:
        image = image.resize((image.width * zoom, image.height * zoom),
                             Image.NEAREST)
    return image


def image_settings(args, model, options, seconds):
    """The PNG's metadata: the settings that made the image."""
    import torch
    settings = dict(prompts=args.prompts, batch_size=args.batch_size,
                    seed=args.seed)
    settings.update(sampling_settings(
        model, options['guidance_scale'], args.negative_prompt,
        options['num_inference_steps'], options['num_inference_steps_up'],
        args.classifier_scale))
    if args.mask:
        settings.update(init_image=args.init_image, mask=args.mask)
    if args.strength is not None:
        settings.update(init_image=args.init_image, strength=args.strength)
    if args.lora:
        settings.update(lora=[dict(path=p, scale=s) for p, s in args.lora])
    settings.update(
        config=args.config,
        checkpoint=args.checkpoint or 'none (random weights)',
        dtype=str(next(model.unet.parameters()).dtype).replace('torch.', ''),
        device=args.device, threads=torch.get_num_threads(), zoom=args.zoom,
        seconds=round(seconds, 2))
    return settings


def main(argv=None):
    """Run the tool; returns the path of the image written."""
    from mmengine import Config
    args = parse_args(argv)
    keeps_settings = check_out(args.out)
    check_files(args)
    check_device(args.device)
    cfg = Config.fromfile(args.config)
    check_against_config(args, cfg)
    options = sampling_options(args, cfg)
    init_image, mask = image_inputs(args, cfg)
    warn_about_prompts(args, cfg)
    start = time.time()
    model = build_model(cfg, args.checkpoint, args.device,
                        sampler=args.sampler, dtype=args.dtype)
    load_adapters(model, args.lora)
    load_s = time.time() - start
    prompts = [p for p in args.prompts for _ in range(args.batch_size)]
    start = time.time()
    samples = model.infer(
        prompt=prompts, negative_prompt=args.negative_prompt,
        classifier_scale=args.classifier_scale, init_image=init_image,
        mask=mask, strength=args.strength, seed=args.seed,
        show_progress=not args.no_progress,
        **options)['samples']
    sample_s = time.time() - start
    from PIL import Image
    image = to_grid(samples, args.batch_size, args.zoom)
    if keeps_settings:
        save_png(image, args.out, image_settings(args, model, options,
                                                 sample_s))
    else:  # written whole or not at all, as save_png does
        with atomic_write(args.out) as tmp:
            image.save(tmp, format=Image.registered_extensions()[
                os.path.splitext(args.out)[1].lower()])
    count = len(prompts)
    print(f'wrote {args.out}: {count} sample{"s" * (count != 1)} of '
          f'{samples.shape[-1]}x{samples.shape[-2]} in {sample_s:.1f} s '
          f'(model loaded in {load_s:.1f} s)')
    return args.out


if __name__ == '__main__':
    from projects.glide.runtime import configure_threads
    configure_threads()
    try:
        main()
    except (ValueError, KeyError, FileNotFoundError, MemoryError,
            pickle.UnpicklingError, WriteError) as err:
        fail(err)
