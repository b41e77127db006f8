"""Writing files whole or not at all, and checking the shipped files.

Every file the project writes (training checkpoints and their
``last_checkpoint`` pointer, published weights, LoRA adapters, converted
checkpoints, PNGs, generated datasets) goes through :func:`atomic_write`:
it is written under a temporary name in its own folder, flushed to the disk
(``fsync``) and renamed onto its name (``os.replace``, atomic on POSIX and
Windows). A process killed at any moment leaves either the old file or the
new one, never a part; a full disk leaves the old file and no temporary
file, and raises :class:`DiskFullError` naming the path.

Light to import (the standard library only).

Example::

    >>> with atomic_write('out/model.safetensors') as temporary:
    ...     save_file(tensors, temporary)
"""
import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile
from typing import Dict, Iterator, Optional, Tuple

#: ``errno`` values that mean the disk (or the quota) is full.
FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
#: What the temporary names look like: ``.<name>.<random>.tmp<ext>``.
TEMPORARY_MARK = '.tmp'
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_TEMPORARY = re.compile(r'^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[^.]+)?$')


class WriteError(OSError):
    """A file could not be written; the message names it. Nothing was left
    at its path or beside it: an older file there is unchanged."""

    def __str__(self) -> str:
        return str(self.strerror)


class DiskFullError(WriteError):
    """A file could not be written because the disk (or quota) is full."""


def temporary_name(path: str) -> str:
    """A new, unused temporary file beside ``path`` (created empty), with
    ``path``'s extension (writers such as ``save_state_dict`` choose the
    format by it)."""
    folder, base = os.path.split(os.path.abspath(path))
    ext = os.path.splitext(base)[1]
    fd, name = tempfile.mkstemp(prefix=f'.{base}.',
                                suffix=TEMPORARY_MARK + ext, dir=folder)
    os.close(fd)
    _usual_mode(name)
    return name


def _usual_mode(name: str) -> None:
    """mkstemp's 0600 (and that of writers that replace the file, such as
    safetensors' ``save_file``) -> what ``open()`` would give."""
    try:
        os.chmod(name, 0o666 & ~_UMASK)
    except (AttributeError, OSError):  # Windows
        pass


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`temporary_name`'s."""
    return _TEMPORARY.match(os.path.basename(name)) is not None


def remove_temporaries(folder: str) -> int:
    """Remove the temporary files a killed writer left in ``folder``.

    Returns:
        int: How many were removed.
    """
    removed = 0
    for entry in os.scandir(folder) if os.path.isdir(folder) else ():
        if entry.is_file() and is_temporary(entry.name):
            with contextlib.suppress(FileNotFoundError):
                os.remove(entry.path)
                removed += 1
    return removed


def fsync_file(path: str) -> None:
    """Flush a written file's data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: str) -> None:
    """Flush a folder's entries (the rename) where the system allows."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # Windows: folders cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_disk_full(err: BaseException) -> bool:
    """Whether an error from a writer means a full disk (an ``OSError``
    with ENOSPC/EDQUOT, or one of torch's ``file write failed`` errors
    when the disk has no space left)."""
    if isinstance(err, OSError):
        return err.errno in FULL_DISK_ERRNOS
    return isinstance(err, RuntimeError) and 'write failed' in str(err)


def _write_error(path: str, err: BaseException) -> WriteError:
    """The error to raise for a failed write of ``path``."""
    if is_disk_full(err):
        folder = os.path.dirname(os.path.abspath(path))
        try:
            free = f' ({shutil.disk_usage(folder).free / 2**20:.1f} MiB free)'
        except OSError:
            free = ''
        return DiskFullError(
            errno.ENOSPC, f'cannot write {path}: no space left on the '
            f'device{free}; nothing was written and an older {path} is '
            'unchanged: free some space and run again')
    return WriteError(getattr(err, 'errno', None) or errno.EIO,
                      f'cannot write {path}: {err}; nothing was written and '
                      f'an older {path} is unchanged')


@contextlib.contextmanager
def atomic_write(path: str) -> Iterator[str]:
    """Write ``path`` whole or not at all.

    Yields a temporary path in ``path``'s folder (created if needed) for
    the body to write; when the body returns, the file is flushed to the
    disk and renamed onto ``path``. If the body or the flush fails, the
    temporary file is removed and ``path`` is left as it was.

    Args:
        path (str): The file to write (replaced if it exists).

    Yields:
        str: The temporary file to write instead (it exists, empty, and has
        ``path``'s extension).

    Raises:
        DiskFullError: The disk or quota is full (the message names
            ``path``).
        WriteError: Another ``OSError`` (or torch's write error) while
            writing; other exceptions of the body pass unchanged.
    """
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        temporary = temporary_name(path)
    except OSError as err:
        raise _write_error(path, err) from err
    try:
        yield temporary
        fsync_file(temporary)
        _usual_mode(temporary)
        os.replace(temporary, path)
    except (OSError, RuntimeError) as err:
        if isinstance(err, WriteError) or (isinstance(err, RuntimeError) and
                                           not is_disk_full(err)):
            raise
        raise _write_error(path, err) from err
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
    _fsync_folder(folder)


def write_text(path: str, text: str) -> None:
    """Write a text file (UTF-8) with :func:`atomic_write`."""
    with atomic_write(path) as temporary:
        with open(temporary, 'w', encoding='utf-8') as f:
            f.write(text)


_HASHES: Dict[Tuple[str, int, int], str] = {}


def sha256_of(path: str) -> str:
    """The SHA-256 of a file (hex), cached by its path, size and mtime."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        digest = hashlib.sha256()
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
        _HASHES[key] = digest.hexdigest()
    return _HASHES[key]


def read_sums(sums_file: str) -> Dict[str, str]:
    """The ``sha256sum`` lines of ``sums_file`` as ``{file name: hash}``."""
    sums = {}
    with open(sums_file, encoding='utf-8') as f:
        for line in f:
            if line.strip() and not line.startswith('#'):
                digest, name = line.split(maxsplit=1)
                sums[name.strip().lstrip('*')] = digest.lower()
    return sums


def verify_sha256(path: str, sums_file: str) -> Optional[str]:
    """Check ``path`` against its line in ``sums_file`` (``sha256sum``
    format, names relative to the file's folder).

    Args:
        path (str): The file.
        sums_file (str): The checksums; a file it does not list is not
            checked.

    Returns:
        str | None: The hash when the file is listed, else None.

    Raises:
        ValueError: The file's hash differs, naming the file, both hashes
            and what to do.
    """
    if not os.path.isfile(sums_file):
        return None
    name = os.path.relpath(os.path.abspath(path),
                           os.path.dirname(os.path.abspath(sums_file)))
    expected = read_sums(sums_file).get(name.replace(os.sep, '/'))
    if expected is None:
        return None
    actual = sha256_of(path)
    if actual != expected:
        raise ValueError(
            f'{path} is damaged or was changed: its SHA-256 is {actual}, '
            f'{sums_file} records {expected}; restore it (git checkout -- '
            f'{name} or download it again)')
    return actual
