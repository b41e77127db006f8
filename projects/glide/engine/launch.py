"""Launching mmengine runs on CPU processes."""
import torch


def prepare_cpu_distributed(cfg, launcher: str) -> None:
    """Make ``launcher='pytorch'`` work without GPUs: mmengine's launcher
    pins each process to a CUDA device, so on a CPU-only machine we start
    the gloo process group ourselves (mmengine then reuses it) and wrap the
    model in DDP without device ids."""
    if launcher == 'none' or torch.cuda.is_available():
        return
    import torch.distributed as dist
    cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    cfg.model_wrapper_cfg = dict(type='MMDistributedDataParallel',
                                 device_ids=None)
    if launcher == 'pytorch' and not dist.is_initialized():
        dist.init_process_group(backend='gloo')


def add_runner_args(parser) -> None:
    """The options tools/train.py and tools/test.py share."""
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='the dir to save logs and outputs')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings: key=value')
    parser.add_argument('--launcher',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_runner_config(args):
    """The config of ``args.config`` with the shared options applied."""
    import os
    import os.path as osp
    from mmengine.config import Config
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    prepare_cpu_distributed(cfg, args.launcher)
    return cfg
