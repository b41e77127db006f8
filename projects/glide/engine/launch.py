"""Launching mmengine runs: CPU processes, shortened schedules, a quiet
start-up."""
import logging

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
    parser.add_argument('--verbose', action='store_true',
                        help="print mmengine's start-up tables (environment, "
                        'config, hooks) here too; they are always in the '
                        'log file')


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


def _scaled(value: int, old: int, new: int) -> int:
    """An interval of a run of ``old`` iterations in one of ``new``:
    proportional, at least 1; one past the end stays past the end."""
    if value > old:
        return new + 1
    return max(1, round(value * new / old))


def _phase_bounds(schedulers, old: int, new: int) -> dict:
    """Each ``begin``/``end`` of the schedulers (within the run) mapped to
    the shorter run: proportional, but every phase at least 2 iterations
    (a ``LinearLR`` warm-up over fewer never leaves its start factor, and
    the next phase would then start from it).

    Raises:
        SystemExit: ``new`` has no room for the phases.
    """
    points = sorted({s[k] for s in schedulers for k in ('begin', 'end')
                     if isinstance(s.get(k), int) and s[k] <= old})
    bounds, last = {}, None
    for point in points:
        bounds[point] = round(point * new / old)
        if last is not None:
            bounds[point] = max(bounds[point], last + 2)
        last = bounds[point]
    if last is not None and last > new:
        raise SystemExit(f'--max-iters {new} is too short for the learning '
                         f'rate schedule (phases at {points}): give at least '
                         f'{last}')
    return bounds


def _shorten_schedulers(cfg, old: int, new: int, changes: list) -> None:
    """Scale ``cfg.param_scheduler`` in place (:func:`shorten_schedule`)."""
    schedulers = cfg.get('param_scheduler') or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    for i, sched in enumerate(schedulers):
        if sched.get('by_epoch', True):
            raise SystemExit(f'--max-iters: param_scheduler[{i}] '
                             f'({sched.get("type")}) counts epochs (by_epoch'
                             '=True); only iteration schedules are scaled')
    bounds = _phase_bounds(schedulers, old, new)
    for i, sched in enumerate(schedulers):
        name = f'param_scheduler[{i}] ({sched.get("type")})'
        span = (sched.get('begin', 0), sched.get('end', old + 1))
        for key in ('begin', 'end'):
            if isinstance(sched.get(key), int):
                before = sched[key]
                sched[key] = bounds.get(before, new + 1)
                changes.append(f'{name}.{key}: {before} -> {sched[key]}')
        if isinstance(sched.get('T_max'), int):  # as its phase scaled
            ratio = ((sched['end'] - sched['begin']) / (span[1] - span[0])
                     if span[0] < span[1] <= old else new / old)
            sched['T_max'] = max(1, round(sched['T_max'] * ratio))
            changes.append(f'{name}.T_max -> {sched["T_max"]}')
        if sched.get('milestones'):
            sched['milestones'] = [_scaled(m, old, new)
                                   for m in sched['milestones']]
            changes.append(f'{name}.milestones -> {sched["milestones"]}')


def shorten_schedule(cfg, max_iters: int) -> list:
    """Make an iteration-based run ``max_iters`` long with the same shape:
    every ``param_scheduler``'s ``begin``/``end``/``T_max``/``milestones``,
    the validation interval and the checkpoint and logger intervals scale by
    ``max_iters / train_cfg.max_iters`` (an interval past the end stays past
    it; a schedule phase keeps at least 2 iterations).

    Args:
        cfg (Config): The runner config, changed in place.
        max_iters (int): The new length, at least 1.

    Returns:
        list[str]: What changed, ``'key: old -> new'``.

    Raises:
        SystemExit: ``max_iters`` is below 1 or too short for the schedule's
            phases, the loop is not ``IterBasedTrainLoop``, or a scheduler
            counts epochs.
    """
    if max_iters < 1:
        raise SystemExit(f'--max-iters must be at least 1, got {max_iters}')
    loop = cfg.get('train_cfg') or {}
    if loop.get('type') != 'IterBasedTrainLoop' or not loop.get('max_iters'):
        raise SystemExit('--max-iters needs train_cfg of type '
                         "'IterBasedTrainLoop' with max_iters, got "
                         f'{dict(loop)}')
    old = loop['max_iters']
    changes = [f'train_cfg.max_iters: {old} -> {max_iters}']
    _shorten_schedulers(cfg, old, max_iters, changes)
    loop['max_iters'] = max_iters
    intervals = [(loop, 'train_cfg.val_interval', 'val_interval')]
    hooks = cfg.get('default_hooks') or {}
    intervals += [(hooks.get(hook) or {}, f'default_hooks.{hook}.interval',
                   'interval') for hook in ('checkpoint', 'logger')]
    for owner, name, key in intervals:
        if isinstance(owner.get(key), int):
            before = owner[key]
            owner[key] = _scaled(before, old, max_iters)
            changes.append(f'{name}: {before} -> {owner[key]}')
    return changes


def disable_validation(cfg) -> None:
    """Switch validation off (``--no-validate``): no ``val_cfg``,
    ``val_dataloader`` or ``val_evaluator``, so its data is not needed."""
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None


#: The start of mmengine's start-up log records: the environment, the whole
#: config and the hook tables (about 390 lines for a GLIDE config), and
#: notes that concern no GLIDE run (SyncBN, deprecated file backends).
STARTUP_RECORDS = ('\n' + '-' * 60 + '\nSystem environment:', 'Config:\n',
                   'Hooks will be executed in the following order',
                   'Distributed training is not used, all SyncBatchNorm',
                   '"FileClient" will be deprecated',
                   '"HardDiskBackend" is the alias')


class StartupFilter(logging.Filter):
    """Keeps :data:`STARTUP_RECORDS` off a console handler (the log file
    keeps them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(STARTUP_RECORDS)


def runner_class(verbose: bool):
    """:class:`~projects.glide.engine.checkpointing.GlideRunner` (mmengine's
    ``Runner`` writing whole checkpoints), or with ``verbose=False`` one
    whose console leaves out the start-up tables (:data:`STARTUP_RECORDS`).
    """
    from .checkpointing import GlideRunner
    if verbose:
        return GlideRunner

    class QuietRunner(GlideRunner):
        """A Runner whose console shows no start-up tables."""

        def build_logger(self, *args, **kwargs):
            logger = super().build_logger(*args, **kwargs)
            for handler in logger.handlers:
                if not isinstance(handler, logging.FileHandler) and not any(
                        isinstance(f, StartupFilter) for f in handler.filters):
                    handler.addFilter(StartupFilter())
            return logger

    return QuietRunner


def describe_run(cfg, runner, tool: str) -> str:
    """A few lines on what a run will do and where its full log is.

    Args:
        cfg (Config): The runner config.
        runner (Runner): The runner built from it.
        tool (str): The tool's name, e.g. ``'tools/train.py'``.

    Returns:
        str: The summary.
    """
    import os.path as osp
    lines = [f'{tool}: {cfg.filename}']
    loop = cfg.get('train_cfg') or {}
    if tool.endswith('train.py') and loop.get('max_iters'):
        val = ('off' if not cfg.get('val_cfg') else
               f'every {loop.get("val_interval")} iterations')
        ckpt = (cfg.get('default_hooks', {}).get('checkpoint') or
                {}).get('interval')
        lines.append(f'  {loop["max_iters"]} iterations; validation {val}; '
                     f'checkpoints every {ckpt}')
        for sched in cfg.get('param_scheduler') or []:
            lines.append(f'  lr: {sched.get("type")} from iteration '
                         f'{sched.get("begin", 0)} to {sched.get("end")}')
    lines.append(f'  work_dir: {runner.work_dir}')
    lines.append('  environment, config and hooks: '
                 f'{osp.join(runner.log_dir, runner.timestamp + ".log")} '
                 '(--verbose prints them here)')
    return '\n'.join(lines)
