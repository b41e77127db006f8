"""Kill training at random moments and resume it: does it always resume
from a complete checkpoint and end bit for bit where an uninterrupted run
ends?

    python tools/kill_resume.py [--kills 20] [--iters 6] [--seed 0]
        [--work-dir DIR] [--config CONFIG]

Trains a tiny config (tests/configs/glide_tiny_train-16.py, on 8 shapes
images it writes) once without interruption (the reference), then again
and again with ``tools/train.py --resume``, each run SIGKILLed at a random
moment (uniform over the first 60 % of the reference run's duration; every
other kill over its first 30 %, and then at the next moment a checkpoint's
bytes are being written) until it finishes; then a new run, until
``--kills`` kills were made. A checkpoint is written every iteration (two
kept). After each kill: ``last_checkpoint`` must name a checkpoint that
loads whole, and every ``iter_*.pth`` left must load. At the end of each
run the final weights (model and EMA) must equal the reference's bit for
bit.

Each run is a child forked from a fork server that has imported everything
once (a fresh interpreter would spend seconds on imports); all runs share
one thread setting (``OMP_NUM_THREADS``, default 1), which keeps
CPU kernels' summation order, and so the bits, the same.
"""
import argparse
import os
import os.path as osp
import random
import signal
import sys
import tempfile
import time

sys.path.insert(0, osp.abspath(osp.join(osp.dirname(__file__), '..')))
os.environ.setdefault('OMP_NUM_THREADS', '1')

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))
CONFIG = osp.join(ROOT, 'tests', 'configs', 'glide_tiny_train-16.py')
#: What a kill hit: nothing written, a checkpoint save, its bytes.
WHERE = ('', ' (killed in a checkpoint save)',
         ' (killed while a checkpoint\'s bytes were written)')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--kills', type=int, default=20,
                        help='how many kills to make (default 20)')
    parser.add_argument('--iters', type=int, default=6,
                        help='iterations of each run (default 6)')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the kill moments (default 0)')
    parser.add_argument('--work-dir', help='folder for the runs (default: '
                        'a temporary folder, removed at the end)')
    parser.add_argument('--config', default=CONFIG,
                        help='a config with a data_root (default: the tiny '
                        'test config)')
    args = parser.parse_args(argv)
    if args.kills < 1 or args.iters < 2:
        parser.error(f'--kills must be >= 1 and --iters >= 2, got '
                     f'{args.kills} and {args.iters}')
    return args


def train_argv(args, work_dir: str, data_root: str) -> list:
    """tools/train.py's arguments for one (resumed) run."""
    return [args.config, '--work-dir', work_dir, '--resume', '--no-validate',
            '--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
            f'train_cfg.max_iters={args.iters}',
            'default_hooks.checkpoint.interval=1',
            'default_hooks.checkpoint.max_keep_ckpts=2',
            'default_hooks.logger.interval=1']


#: What the fork server imports once, for every run it forks.
PRELOAD = ['tools.train', 'projects.glide.models', 'projects.glide.datasets',
           'projects.glide.engine', 'projects.glide.evaluation',
           'mmagic.datasets', 'mmagic.engine', 'mmagic.evaluation',
           'mmagic.models', 'mmagic.visualization', 'matplotlib.pyplot']


def fork_server():
    """A multiprocessing context whose children are forked from a fresh,
    single-threaded server process that has imported :data:`PRELOAD` (a
    child forked from a process with threads, pytest's after a training
    test, can hang on a lock a thread held)."""
    import multiprocessing
    context = multiprocessing.get_context('forkserver')
    context.set_forkserver_preload(PRELOAD)
    return context


def run_child(argv: list, log: str) -> None:
    """A run's body: tools/train.py's ``main(argv)``, its output in
    ``log``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    from tools.train import main
    main(argv)


def start(context, argv: list, log: str):
    """Start a run of tools/train.py ``argv`` (a child of the fork
    server), its output in ``log``; the process."""
    process = context.Process(target=run_child, args=(argv, log))
    process.start()
    return process


def _writing(work_dir: str) -> bool:
    """Whether a checkpoint's bytes are being written in ``work_dir`` (a
    temporary file with bytes)."""
    from projects.glide.files import is_temporary
    try:
        with os.scandir(work_dir) as entries:
            return any(is_temporary(e.name) and e.stat().st_size > 0
                       for e in entries)
    except FileNotFoundError:  # gone or not made yet
        return False


def finish(process, kill_after=None, work_dir=None) -> str:
    """Wait for a run; SIGKILL it after ``kill_after`` seconds (and, with
    ``work_dir``, then at the first moment a checkpoint's bytes are being
    written there). ``'killed'``, ``'finished'`` or ``'failed'``."""
    if kill_after is not None:
        deadline = time.monotonic() + kill_after
        while process.is_alive() and (time.monotonic() < deadline or (
                work_dir and not _writing(work_dir))):
            time.sleep(0.002)
        if process.is_alive():
            os.kill(process.pid, signal.SIGKILL)
    process.join()
    if process.exitcode == -signal.SIGKILL:
        return 'killed'
    return 'finished' if process.exitcode == 0 else 'failed'


def load(path: str) -> dict:
    """A checkpoint, read whole."""
    import torch
    return torch.load(path, map_location='cpu', weights_only=False)


def check_work_dir(work_dir: str) -> dict:
    """After a kill: ``last_checkpoint`` (if any) names a checkpoint that
    loads, and every ``iter_*.pth`` loads.

    Returns:
        dict: ``pointer`` (the named file or None), ``in_write`` (a
        temporary file of a checkpoint save in progress was left) and
        ``in_bytes`` (it had bytes: the kill hit the file's writing).

    Raises:
        AssertionError: A broken checkpoint or pointer.
    """
    from projects.glide.files import is_temporary
    names = os.listdir(work_dir)
    for name in names:
        if name.startswith('iter_') and name.endswith('.pth'):
            load(osp.join(work_dir, name))  # raises if truncated
    pointer = None
    if 'last_checkpoint' in names:
        with open(osp.join(work_dir, 'last_checkpoint')) as f:
            pointer = f.read().strip()
        assert osp.isfile(pointer), f'last_checkpoint names {pointer!r}'
        step = int(osp.basename(pointer)[5:-4])
        assert load(pointer)['meta']['iter'] == step, pointer
    temporaries = [osp.getsize(osp.join(work_dir, name)) for name in names
                   if is_temporary(name)]
    return dict(pointer=pointer, in_write=bool(temporaries),
                in_bytes=any(temporaries))


def same_weights(a: str, b: str) -> bool:
    """Whether two checkpoints' model and EMA weights are equal bit for
    bit."""
    import torch
    x, y = load(a), load(b)
    for key in ('state_dict', 'ema_state_dict'):
        if x[key].keys() != y[key].keys():
            return False
        if not all(torch.equal(x[key][k], y[key][k]) for k in x[key]):
            return False
    return True


def prepare(args, folder: str) -> tuple:
    """Write the data, start the fork server and time the reference run;
    ``(context, data_root, reference checkpoint, seconds)``."""
    from projects.glide.shapes import write_dataset
    data_root = osp.join(folder, 'data')
    write_dataset(data_root, 8, seed=0, size=16)
    context = fork_server()
    reference = osp.join(folder, 'reference')
    finish(start(context, [args.config, '--help'], os.devnull))  # warm up
    began = time.monotonic()
    process = start(context, train_argv(args, reference, data_root),
                    osp.join(folder, 'reference.log'))
    if finish(process) != 'finished':
        raise SystemExit(f'the reference run failed: see {folder}/'
                         'reference.log')
    seconds = time.monotonic() - began
    return (context, data_root, osp.join(reference, f'iter_{args.iters}.pth'),
            seconds)


def one_run(args, folder: str, prepared: tuple, rng, stats: dict) -> None:
    """Train one run to its end, killed at random moments (while kills are
    left to make); count into ``stats``."""
    context, data_root, reference, seconds = prepared
    work_dir = osp.join(folder, f'run{stats["runs"]}')
    stats['runs'] += 1
    log = osp.join(folder, f'run{stats["runs"]}.log')
    while True:
        kill = stats['tried'] < args.kills
        process = start(context, train_argv(args, work_dir, data_root), log)
        aim = work_dir if stats['tried'] % 2 else None  # every other kill
        delay = rng.uniform(0, seconds * (0.3 if aim else 0.6))
        outcome = finish(process, delay if kill else None, aim)
        if outcome == 'failed':
            raise SystemExit(f'a resumed run failed: see {log}')
        if outcome == 'finished':
            break
        stats['tried'] += 1
        state = check_work_dir(work_dir)  # raises when broken
        stats['survived'] += 1
        stats['in_write'] += state['in_write']
        stats['in_bytes'] += state['in_bytes']
        print(f'kill {stats["tried"]}: resumes from '
              f'{osp.basename(state["pointer"] or "the start")}'
              f'{WHERE[state["in_write"] + state["in_bytes"]]}',
              flush=True)
    exact = same_weights(reference, osp.join(work_dir,
                                             f'iter_{args.iters}.pth'))
    stats['exact'] += exact
    print(f'run {stats["runs"]}: final weights '
          f'{"equal" if exact else "DIFFER FROM"} the uninterrupted run\'s',
          flush=True)


def kill_and_resume(args, folder: str) -> dict:
    """Make ``args.kills`` kills; the counts.

    Returns:
        dict: ``tried``/``survived`` kills, ``in_write`` (kills that landed
        in a checkpoint save) and ``in_bytes`` (of them, in the writing of
        its bytes), ``runs`` and ``exact`` (runs whose final
        weights equal the reference's bit for bit), ``seconds`` (of the
        reference run).
    """
    prepared = prepare(args, folder)
    seconds = prepared[-1]
    print(f'reference run: {seconds:.1f} s', flush=True)
    rng = random.Random(args.seed)
    stats = dict(tried=0, survived=0, in_write=0, in_bytes=0, runs=0, exact=0,
                 seconds=seconds)
    while stats['tried'] < args.kills:
        one_run(args, folder, prepared, rng, stats)
    return stats


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.work_dir:
        os.makedirs(args.work_dir, exist_ok=True)
        stats = kill_and_resume(args, args.work_dir)
    else:
        with tempfile.TemporaryDirectory(prefix='kill_resume.') as folder:
            stats = kill_and_resume(args, folder)
    print(f'kills survived/tried: {stats["survived"]}/{stats["tried"]} '
          f'({stats["in_write"]} during a checkpoint save, '
          f'{stats["in_bytes"]} of them while its bytes were written); '
          'runs resumed '
          f'bit-exact: {stats["exact"]}/{stats["runs"]}')
    if stats['exact'] != stats['runs']:
        raise SystemExit('a resumed run did not end bit-exact')
    return stats


if __name__ == '__main__':
    main()
