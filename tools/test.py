"""Test (sample and evaluate) a GLIDE checkpoint with mmengine's Runner.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]
        [--cfg-options key=value ...] [--launcher none|pytorch|slurm|mpi]

Writes a grid of the samples (work_dir/<time>/vis_data) and the metrics.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))

from mmengine.runner import Runner  # noqa: E402

from projects.glide.engine.launch import (add_runner_args,  # noqa: E402
                                          load_runner_config)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Test a GLIDE model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    add_runner_args(parser)
    args = parser.parse_args(argv)
    cfg = load_runner_config(args)
    cfg.load_from = args.checkpoint
    return Runner.from_cfg(cfg).test()


if __name__ == '__main__':
    main()
