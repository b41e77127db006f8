"""Teach a GLIDE model your images with a low-rank adapter (LoRA).

A folder of captioned images in, a small float16 adapter file out::

    python tools/train_lora.py DATA_DIR --out my_adapter.safetensors

``DATA_DIR`` holds the images and ``annotations.jsonl`` (one ``{"path",
"caption"}`` per line, paths relative to ``DATA_DIR``; the README's dataset
format). By default it adapts the shipped shapes demo model
(``checkpoints/glide_shapes-32.safetensors``, its 32 px base stage) with a
recipe for a few dozen images; ``--config``/``--checkpoint`` adapt another
model, ``--iters``, ``--rank``, ``--lr``... change the recipe. Progress and
the time left are logged every few iterations.

The DreamBooth form (Ruiz et al. 2022, as MMagic's DreamBooth): a few images
of one subject, all captioned with one instance prompt holding a rare token,
and optionally prior-preservation images that the model itself samples for
the class prompt::

    python tools/train_lora.py my_subject/ --out subject.safetensors \\
        --instance-prompt 'a sks shape' --class-prompt 'a shape' \\
        --num-class-images 16

Use the adapter with ``model.load_lora(path)`` (``Glide.load_lora``).
Only the adapters train (the base weights are frozen): for several
processes, the same model config with ``model.lora_config`` runs through
``tools/train.py``/``tools/dist_train.sh``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/train_lora.py')

DEFAULT_CONFIG = ('projects/glide/configs/'
                  'glide_base-stage1_2xb16-4k_shapes-32x32.py')
DEFAULT_CHECKPOINT = 'checkpoints/glide_shapes-32.safetensors'
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp')


def parse_args(argv=None):
    from projects.glide.models.lora import DEFAULT_TARGETS
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('data_dir', help='folder of images (and '
                        'annotations.jsonl unless --instance-prompt)')
    parser.add_argument('--out', required=True,
                        help='the adapter file to write (.safetensors)')
    parser.add_argument('--config', default=DEFAULT_CONFIG,
                        help=f'model config (default: {DEFAULT_CONFIG})')
    parser.add_argument('--checkpoint', default=DEFAULT_CHECKPOINT,
                        help=f'base weights (default: {DEFAULT_CHECKPOINT})')
    parser.add_argument('--iters', type=int, default=300,
                        help='training iterations (default: 300)')
    parser.add_argument('--batch-size', type=int, default=8,
                        help='images per iteration (default: 8)')
    parser.add_argument('--lr', type=float, default=2e-3,
                        help='AdamW learning rate (default: 2e-3)')
    parser.add_argument('--rank', type=int, default=4,
                        help='adapter rank (default: 4)')
    parser.add_argument('--scale', type=float, default=1.0,
                        help="adapter scale (MMagic's; peft's alpha / rank; "
                        'default: 1)')
    parser.add_argument('--targets', nargs='+', default=list(DEFAULT_TARGETS),
                        help='layers to adapt: names or regular expressions '
                        f"(default: {' '.join(DEFAULT_TARGETS)})")
    parser.add_argument('--p-uncond', type=float, default=0.1,
                        help='caption dropout for classifier-free guidance '
                        '(default: 0.1)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the training draws (default: 0)')
    parser.add_argument('--instance-prompt',
                        help='DreamBooth: caption every image of DATA_DIR '
                        "with this prompt (e.g. 'a sks shape')")
    parser.add_argument('--class-prompt',
                        help='DreamBooth prior preservation: the class '
                        "prompt (e.g. 'a shape') the model samples images of")
    parser.add_argument('--num-class-images', type=int, default=0,
                        help='prior-preservation images to sample '
                        '(default: 0, none)')
    parser.add_argument('--work-dir',
                        help='logs, the data list and the last checkpoint '
                        '(default: work_dirs/lora_<out name>)')
    args = parser.parse_args(argv)
    _check_args(parser, args)
    return args


def _check_args(parser, args) -> None:
    if not args.out.endswith('.safetensors'):
        parser.error(f'--out must end in .safetensors, got {args.out!r}')
    for name in ('iters', 'batch_size', 'rank'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1')
    if not 0 < args.lr < 1:
        parser.error(f'--lr must be in (0, 1), got {args.lr}')
    if not 0 <= args.p_uncond <= 1:
        parser.error(f'--p-uncond must be in [0, 1], got {args.p_uncond}')
    if args.num_class_images < 0:
        parser.error('--num-class-images must be >= 0')
    if args.num_class_images and not (args.class_prompt and
                                      args.instance_prompt):
        parser.error('--num-class-images needs --instance-prompt and '
                     '--class-prompt (DreamBooth prior preservation)')
    if not osp.isdir(args.data_dir):
        parser.error(f'data folder not found: {args.data_dir!r}')
    for name in ('config', 'checkpoint'):
        if not osp.isfile(getattr(args, name)):
            parser.error(f'--{name} file not found: {getattr(args, name)!r}')


def instance_rows(data_dir: str, prompt: str) -> list:
    """DreamBooth: every image of ``data_dir`` captioned with ``prompt``."""
    paths = sorted(p for p in glob.glob(osp.join(data_dir, '*'))
                   if p.lower().endswith(IMAGE_EXTENSIONS))
    if not paths:
        raise SystemExit(f'no images ({", ".join(IMAGE_EXTENSIONS)}) in '
                         f'{data_dir!r}')
    return [dict(path=osp.abspath(p), caption=prompt) for p in paths]


def sample_class_images(args, folder: str) -> list:
    """Prior preservation: ``--num-class-images`` samples of the base model
    for ``--class-prompt``, written to ``folder``."""
    from mmagic.apis import init_model
    from PIL import Image
    model = init_model(args.config, args.checkpoint, device='cpu')
    os.makedirs(folder, exist_ok=True)
    print(f'sampling {args.num_class_images} prior-preservation images of '
          f'{args.class_prompt!r}', flush=True)
    samples = model.infer(prompt=args.class_prompt, seed=args.seed,
                          batch_size=args.num_class_images,
                          show_progress=True)['samples']
    rows = []
    for i, img in enumerate(samples):
        path = osp.abspath(osp.join(folder, f'class_{i:04d}.png'))
        pixels = ((img + 1) * 127.5).round().clamp(0, 255).byte()
        Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(path)
        rows.append(dict(path=path, caption=args.class_prompt))
    return rows


def training_data(args, work_dir: str) -> str:
    """The folder whose ``annotations.jsonl`` the run trains on: DATA_DIR
    itself, or (DreamBooth) a list of its images with the instance prompt
    and the prior-preservation images."""
    if not args.instance_prompt:
        if not osp.isfile(osp.join(args.data_dir, 'annotations.jsonl')):
            raise SystemExit(
                f'{args.data_dir!r} has no annotations.jsonl ({{"path", '
                '"caption"}} per line); or caption every image with one '
                'prompt: --instance-prompt')
        return args.data_dir
    rows = instance_rows(args.data_dir, args.instance_prompt)
    if args.num_class_images:
        rows += sample_class_images(args, osp.join(work_dir, 'class_images'))
    folder = osp.join(work_dir, 'data')
    os.makedirs(folder, exist_ok=True)
    with open(osp.join(folder, 'annotations.jsonl'), 'w') as f:
        f.writelines(json.dumps(row) + '\n' for row in rows)
    return folder


def lora_config(args, data_root: str, work_dir: str):
    """The base config turned into an adapter run: adapters on the base
    network, the base weights loaded, this data, no validation, no EMA."""
    from mmengine.config import Config
    from projects.glide.engine.launch import disable_validation
    cfg = Config.fromfile(args.config)
    cfg.model.lora_config = dict(rank=args.rank, scale=args.scale,
                                 target_modules=list(args.targets))
    cfg.model.train_cfg.update(stage='base', p_uncond=args.p_uncond,
                               seed=args.seed)
    cfg.load_from, cfg.resume, cfg.work_dir = args.checkpoint, False, work_dir
    loader = cfg.train_dataloader
    loader.batch_size = args.batch_size
    loader.dataset.data_root = data_root
    loader.dataset.ann_file = 'annotations.jsonl'
    disable_validation(cfg)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=args.iters)
    cfg.optim_wrapper = dict(
        type='OptimWrapper', clip_grad=dict(max_norm=1.0),
        optimizer=dict(type='AdamW', lr=args.lr, weight_decay=0.0))
    cfg.param_scheduler = [dict(type='LinearLR', start_factor=0.1,
                                by_epoch=False, begin=0,
                                end=max(2, args.iters // 10))]
    cfg.custom_hooks = []  # no EMA: a few hundred steps of few weights
    cfg.default_hooks.logger.interval = max(1, args.iters // 20)
    cfg.default_hooks.checkpoint = dict(
        type='GlideCheckpointHook', interval=args.iters, max_keep_ckpts=1)
    cfg.randomness = dict(seed=args.seed)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    from mmengine.registry import init_default_scope
    import projects.glide.models  # noqa: F401
    from projects.glide.engine.launch import runner_class
    init_default_scope('mmagic')
    name = osp.splitext(osp.basename(args.out))[0]
    work_dir = args.work_dir or osp.join('work_dirs', f'lora_{name}')
    data_root = training_data(args, work_dir)
    runner = runner_class(verbose=False).from_cfg(
        lora_config(args, data_root, work_dir))
    model = getattr(runner.model, 'module', runner.model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f'training {trainable:,} adapter parameters for {args.iters} '
          f'iterations (the log shows the time left)', flush=True)
    start = time.time()
    runner.train()
    size = model.save_lora(args.out)
    print(f'wrote {args.out} ({size / 1024:.0f} KiB) after '
          f'{time.time() - start:.0f} s; use it with '
          f"model.load_lora({args.out!r})", flush=True)
    return runner


if __name__ == '__main__':
    from projects.glide.runtime import configure_threads
    configure_threads(print)
    main()
