"""Train a GLIDE config with mmengine's Runner (as mmagic's tools/train.py).

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--max-iters N] [--no-validate] [--verbose]
        [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]

A shorter run of the same recipe: ``--max-iters N`` scales the whole
schedule to N iterations (each param_scheduler's begin/end/T_max/milestones
and the validation, checkpoint and logger intervals, by N over the config's
max_iters); ``--cfg-options train_cfg.max_iters=N`` alone stops early on the
config's learning-rate schedule. ``--no-validate`` switches validation off
(it then needs no validation data). Checkpoints are written whole or not
at all: a kill or a full disk leaves the previous one, and ``--resume``
continues from it (projects/glide/engine/checkpointing.py). The console
shows a short summary of the run; mmengine's environment, config and hook
tables go to the log file (``--verbose`` prints them too).

Several processes (DDP, one per GPU or CPU process): tools/dist_train.sh.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/train.py')

from projects.glide.engine.launch import (  # noqa: E402
    add_runner_args, check_data, describe_run, disable_validation,
    load_runner_config, runner_class, shorten_schedule)
from projects.glide.files import WriteError  # noqa: E402


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
    parser.add_argument(
        '--max-iters', type=int, metavar='N',
        help='train N iterations, the schedule (learning rate, validation, '
        'checkpoint and logger intervals) scaled to them')
    parser.add_argument('--no-validate', action='store_true',
                        help='switch validation off')
    add_runner_args(parser)
    args = parser.parse_args(argv)
    cfg = load_runner_config(args)
    if args.max_iters is not None:
        shorten_schedule(cfg, args.max_iters)
    if args.no_validate:
        disable_validation(cfg)
    check_data(cfg, ['train_dataloader'] +
               (['val_dataloader'] if cfg.get('val_cfg') else []))
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    runner = runner_class(args.verbose).from_cfg(cfg)
    if runner.rank == 0:
        print(describe_run(cfg, runner, 'tools/train.py'), flush=True)
    try:
        runner.train()
    except WriteError as err:  # a full disk: the message says it all
        raise SystemExit(f'tools/train.py: {err}; --resume continues from '
                         'the last checkpoint written') from err
    return runner


if __name__ == '__main__':
    from projects.glide.runtime import configure_threads
    configure_threads(print if os.environ.get('RANK', '0') == '0' else None)
    main()
