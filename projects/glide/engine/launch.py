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


def check_data(cfg, loaders) -> None:
    """Stop before building anything when a dataloader's annotation file is
    not there, naming the option that sets its folder.

    Args:
        cfg (Config): The runner config.
        loaders (Sequence[str]): Dataloader keys, e.g. ``'test_dataloader'``.
    """
    import os.path as osp
    for key in loaders:
        dataset = (cfg.get(key) or {}).get('dataset') or {}
        ann_file, root = dataset.get('ann_file'), dataset.get('data_root', '')
        if not ann_file:
            continue
        path = ann_file if osp.isabs(ann_file) else osp.join(root, ann_file)
        if not osp.isfile(path):
            raise SystemExit(
                f'{key}.dataset: annotation file {path!r} not found; point '
                f'{key}.dataset.data_root at a folder with {ann_file!r} and '
                f'its images: --cfg-options {key}.dataset.data_root=DIR')


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
