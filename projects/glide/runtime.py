"""Process set-up shared by the tools: quiet third-party imports and a sane
CPU thread count. Light to import (no torch, no mmagic at module level)."""
import math
import os
import warnings
from contextlib import contextmanager
from typing import Callable, Optional, Tuple

# Packages whose import-time warnings we cannot act on (mmagic imports them
# for models GLIDE does not use): deprecations inside timm and diffusers,
# controlnet_aux re-registering timm models.
THIRD_PARTY = ('timm', 'diffusers', 'controlnet_aux')


# The import-time warnings those packages raise when mmagic imports them
# (whenever that happens: ``from mmagic.apis import init_model`` too), as
# (package, message pattern): known, harmless, and nothing a user can act on.
KNOWN_IMPORT_WARNINGS = (
    ('timm', r'Importing from timm\.models\.\w+ is deprecated'),
    ('controlnet_aux', r'Overwriting tiny_vit_\w+ in registry'),
    ('diffusers', r'`torch\.utils\._pytree\._register_pytree_node` is '
     'deprecated'),
)


def silence_known_import_warnings() -> None:
    """Ignore, for the whole process, exactly the warnings of
    :data:`KNOWN_IMPORT_WARNINGS` (each by its package and message); every
    other warning of those packages still shows."""
    for package, message in KNOWN_IMPORT_WARNINGS:
        warnings.filterwarnings('ignore', message=message,
                                module=rf'{package}(\..*)?$')


@contextmanager
def quiet_third_party_warnings():
    """Silence the warnings that third-party modules (:data:`THIRD_PARTY`)
    raise while the block runs; warnings attributed to any other module
    (ours included) still show."""
    pattern = r'(%s)(\..*)?$' % '|'.join(THIRD_PARTY)
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', module=pattern)
        yield


def physical_cores() -> int:
    """Physical cores this process may run on: its CPU affinity, counted
    once per core (hyper-threads share one), capped by a cgroup CPU quota."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        topology = f'/sys/devices/system/cpu/cpu{cpu}/topology/'
        try:
            with open(topology + 'physical_package_id') as f:
                package = f.read().strip()
            with open(topology + 'core_id') as f:
                cores.add((package, f.read().strip()))
        except OSError:
            cores.add(('cpu', cpu))
    count = len(cores) or 1
    try:  # cgroup v2: "max 100000" or "200000 100000"
        with open('/sys/fs/cgroup/cpu.max') as f:
            quota, period = f.read().split()[:2]
        if quota != 'max':
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return count


def default_threads() -> Tuple[int, str]:
    """The CPU thread count for torch and the reason for it.

    ``OMP_NUM_THREADS`` when it is set; otherwise the physical cores (more
    threads than cores makes every parallel region wait for descheduled
    threads). The load average is not used: it still counts a job that has
    just ended, and a run started right after another one then got half
    the machine for hours.

    Returns:
        tuple: ``(threads, reason)``.
    """
    env = os.environ.get('OMP_NUM_THREADS', '').strip()
    if env.isdigit() and int(env) > 0:
        return int(env), f'OMP_NUM_THREADS={env}'
    cores = physical_cores()
    return cores, f'{cores} physical cores'


def configure_threads(log: Optional[Callable[[str], None]] = print) -> int:
    """Set torch's CPU thread count to :func:`default_threads` and say so.

    Args:
        log (callable, optional): Where the one-line note goes (None: quiet).

    Returns:
        int: The thread count.
    """
    import torch
    threads, reason = default_threads()
    torch.set_num_threads(threads)
    if log is not None:
        log(f'[glide] {threads} CPU thread{"s" if threads > 1 else ""} '
            f'({reason}; set OMP_NUM_THREADS to choose)')
    return threads


def require_environment(tool: str,
                        modules: Tuple[str, ...] = ('torch', 'mmengine',
                                                    'mmagic')) -> None:
    """Exit with a clear message when this interpreter lacks the project's
    packages (a tool run with the system ``python`` instead of
    ``.venv/bin/python``)."""
    import importlib.util
    import sys
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise SystemExit(
            f'{tool}: this Python ({sys.executable}) lacks '
            f'{", ".join(missing)}: run the tool with the project\'s '
            f'environment, `.venv/bin/python {tool} ...` (create it with '
            '`make setup`)')
