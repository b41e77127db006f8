"""Train a GLIDE config with mmengine's Runner (as mmagic's tools/train.py).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]

Several processes (DDP, one per GPU or CPU process): tools/dist_train.sh.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/train.py')

from mmengine.runner import Runner  # noqa: E402

from projects.glide.engine.launch import (add_runner_args,  # noqa: E402
                                          check_data, load_runner_config)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', const='auto', default=None,
        help='resume from CKPT, or from the latest checkpoint in work_dir')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (AmpOptimWrapper, GPU)')
    add_runner_args(parser)
    args = parser.parse_args(argv)
    cfg = load_runner_config(args)
    check_data(cfg, ['train_dataloader'] +
               (['val_dataloader'] if cfg.get('val_cfg') else []))
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


if __name__ == '__main__':
    from projects.glide.runtime import configure_threads
    configure_threads(print if os.environ.get('RANK', '0') == '0' else None)
    main()
