"""Test (sample and evaluate) a GLIDE checkpoint with mmengine's Runner.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--verbose]
        [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]

The test set is the config's ``test_dataloader``: point it at your data with
``--cfg-options test_dataloader.dataset.data_root=DIR`` (a folder with
``annotations.jsonl`` and its images); the training and validation data
are not needed. Writes a grid of the samples (work_dir/<time>/vis_data)
and the metrics. The console shows a short summary; mmengine's
environment, config and hook tables go to the log file (``--verbose``
prints them too).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from projects.glide.runtime import require_environment  # noqa: E402

require_environment('tools/test.py')

from projects.glide.engine.launch import (  # noqa: E402
    add_runner_args, check_data, describe_run, load_runner_config,
    runner_class)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_runner_args(parser)
    args = parser.parse_args(argv)
    if not osp.isfile(args.checkpoint):
        raise SystemExit(f'tools/test.py: checkpoint {args.checkpoint!r} not '
                         'found')
    cfg = load_runner_config(args)
    check_data(cfg, ['test_dataloader'])
    cfg.load_from = args.checkpoint
    runner = runner_class(args.verbose).from_cfg(cfg)
    if runner.rank == 0:
        print(describe_run(cfg, runner, 'tools/test.py'), flush=True)
    return runner.test()


if __name__ == '__main__':
    from projects.glide.runtime import configure_threads
    configure_threads(print if os.environ.get('RANK', '0') == '0' else None)
    main()
