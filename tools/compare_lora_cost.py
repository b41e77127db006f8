"""What adapters save: seconds per training step and peak memory of a GLIDE
config trained with low-rank adapters against full fine-tuning, measured in
one run (random weights in the released layout; no data needed).

    python tools/compare_lora_cost.py \\
        [projects/glide/configs/glide_ddim-classifier-free_laion-64x64.py] \\
        [--batch 1] [--steps 2] [--rank 4]

Adapters run first: the process's peak resident memory only grows, so the
adapters' peak is read before full fine-tuning allocates its gradients and
AdamW state. Each step is forward, backward and an AdamW step on the
trainable parameters; the first (warm-up) step is not timed.
"""
import argparse
import os.path as osp
import resource
import sys
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/compare_lora_cost.py')

CONFIG = 'projects/glide/configs/glide_ddim-classifier-free_laion-64x64.py'


def peak_rss_gib() -> float:
    """The process's peak resident memory so far (Linux: KiB units)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def measure(model, batch: int, steps: int) -> dict:
    """Time ``steps`` training steps (after one warm-up) of ``model``'s
    trainable parameters with AdamW."""
    import torch
    from mmagic.structures import DataSample
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=1e-5)
    size = model.unet.image_size
    x = torch.rand(batch, 3, size, size) * 2 - 1
    samples = [DataSample(prompt='a photo of a dog')] * batch
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        losses = model(x, samples, mode='loss')
        sum(losses.values()).backward()
        optim.step()
        optim.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - start)
    return dict(trainable=sum(p.numel() for p in params),
                s_per_step=round(sum(times) / len(times), 2),
                peak_rss_gib=round(peak_rss_gib(), 2))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', nargs='?', default=CONFIG)
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--steps', type=int, default=2)
    parser.add_argument('--rank', type=int, default=4)
    args = parser.parse_args(argv)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    import projects.glide.models  # noqa: F401
    from mmagic.registry import MODELS
    init_default_scope('mmagic')
    cfg = Config.fromfile(args.config).model
    cfg.pop('unet_up', None)
    cfg.pop('diffusion_scheduler_up', None)
    cfg.pop('classifier', None)
    cfg.train_cfg = dict(stage='base')
    print(f'{args.config}: base network, batch {args.batch}', flush=True)
    model = MODELS.build(dict(cfg, lora_config=dict(rank=args.rank)))
    print('adapters:', measure(model, args.batch, args.steps), flush=True)
    model.unload_lora().requires_grad_(True)
    print('full fine-tuning:', measure(model, args.batch, args.steps),
          flush=True)


if __name__ == '__main__':
    from projects.glide.runtime import configure_threads
    configure_threads(print)
    main()
