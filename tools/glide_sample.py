"""Generate images with GLIDE and save them as a PNG grid.

Examples::

    python tools/glide_sample.py "an oil painting of a corgi" \
        --config projects/glide/configs/glide_ddim-classifier-free_laion-64-256.py \
        --checkpoint glide_laion-64-256.pth --batch-size 4 --seed 0
    python tools/glide_sample.py "a red cube" "a blue sphere" --sampler ddim \
        --steps 50 --guidance 3 --out outputs/shapes.png

Each prompt gets ``--batch-size`` samples (one row per prompt). The
generation settings are written into the PNG's text metadata.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__),
                                                '..')))

SAMPLERS = {
    'ancestral': 'GlideAncestralScheduler',
    'ddim': 'GlideDDIMScheduler',
    'dpm++2m': 'GlideDPMSolverScheduler',
}
DEFAULT_CONFIG = os.path.join('projects', 'glide', 'configs',
                              'glide_ddim-classifier-free_laion-64-256.py')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('prompts', nargs='+', help='one or more prompts')
    p.add_argument('--config', default=DEFAULT_CONFIG, help='model config')
    p.add_argument('--checkpoint', help='weights (.pth or .safetensors); '
                   'random weights when omitted')
    p.add_argument('--out', default='outputs/glide.png', help='output PNG')
    p.add_argument('--batch-size', type=int, default=1,
                   help='samples per prompt')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--steps', default=None,
                   help="base steps (int) or respacing ('100', 'ddim50')")
    p.add_argument('--steps-up', default=None,
                   help="upsampler steps or respacing ('fast27')")
    p.add_argument('--guidance', type=float, default=3.0,
                   help='classifier-free guidance scale')
    p.add_argument('--sampler', choices=sorted(SAMPLERS),
                   help='base sampler (default: the config\'s)')
    p.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    p.add_argument('--no-progress', action='store_true')
    return p.parse_args(argv)


def _steps(value):
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def main(argv=None):
    args = parse_args(argv)
    import torch
    from mmengine import Config
    from mmengine.registry import init_default_scope
    from PIL import Image, PngImagePlugin
    from torchvision.utils import make_grid

    from mmagic.apis import init_model
    import projects.glide.models  # noqa: F401

    if args.batch_size <= 0:
        raise SystemExit('--batch-size must be positive')
    init_default_scope('mmagic')
    cfg = Config.fromfile(args.config)
    if args.sampler:
        cfg.model.diffusion_scheduler.type = SAMPLERS[args.sampler]
    start = time.time()
    model = init_model(cfg, args.checkpoint, device=args.device)
    load_s = time.time() - start
    prompts = [p for p in args.prompts for _ in range(args.batch_size)]
    start = time.time()
    out = model.infer(
        prompt=prompts,
        guidance_scale=args.guidance,
        num_inference_steps=_steps(args.steps),
        num_inference_steps_up=_steps(args.steps_up)
        if model.unet_up is not None else None,
        seed=args.seed,
        show_progress=not args.no_progress)
    sample_s = time.time() - start
    samples = out['samples']
    grid = make_grid((samples + 1) / 2, nrow=args.batch_size, padding=2)
    array = (grid.clamp(0, 1) * 255).round().to(torch.uint8)
    image = Image.fromarray(array.permute(1, 2, 0).cpu().numpy())
    settings = dict(
        prompts=args.prompts, batch_size=args.batch_size, seed=args.seed,
        steps=args.steps, steps_up=args.steps_up, guidance=args.guidance,
        sampler=cfg.model.diffusion_scheduler.type, config=args.config,
        checkpoint=args.checkpoint, device=args.device,
        seconds=round(sample_s, 2))
    info = PngImagePlugin.PngInfo()
    info.add_text('glide', json.dumps(settings))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    image.save(args.out, pnginfo=info)
    print(f'wrote {args.out}: {len(prompts)} samples of '
          f'{samples.shape[-1]}x{samples.shape[-2]} in {sample_s:.1f} s '
          f'(model loaded in {load_s:.1f} s)')
    return args.out


if __name__ == '__main__':
    main()
