"""projects/glide/files.py: files written whole or not at all; a full disk
(ENOSPC, injected) gives one message naming the path, leaves no temporary
file and the previous file as it was, for a training checkpoint, a
published checkpoint, a PNG and a generated dataset."""
import errno
import hashlib
import os

import pytest
import torch
from PIL import Image

from projects.glide import files
from projects.glide.files import (DiskFullError, WriteError, atomic_write,
                                  is_temporary, remove_temporaries,
                                  verify_sha256, write_text)


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device')


def leftovers(folder):
    return [n for n in os.listdir(folder) if is_temporary(n)]


def test_atomic_write_replaces_whole(tmp_path):
    path = tmp_path / 'a' / 'model.safetensors'
    with atomic_write(str(path)) as temporary:
        assert temporary.endswith('.safetensors') and is_temporary(temporary)
        assert os.path.dirname(temporary) == str(path.parent)
        with open(temporary, 'w') as f:
            f.write('new')
    assert path.read_text() == 'new'
    assert leftovers(path.parent) == []
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as open() makes


def test_a_safetensors_file_gets_the_usual_mode(tmp_path):
    """safetensors' save_file replaces the file it writes with a 0600 one;
    the published file still gets what open() would give."""
    import torch
    from projects.glide.models.checkpoint import save_state_dict
    path = tmp_path / 'model.safetensors'
    with atomic_write(str(path)) as temporary:
        save_state_dict({'w': torch.zeros(2)}, temporary)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_body_error_leaves_the_old_file(tmp_path):
    path = tmp_path / 'out.txt'
    path.write_text('old')
    with pytest.raises(KeyError):  # not an OSError: passed unchanged
        with atomic_write(str(path)) as temporary:
            open(temporary, 'w').write('half')
            raise KeyError('boom')
    assert path.read_text() == 'old' and leftovers(tmp_path) == []


@pytest.mark.parametrize('where', ['write', 'fsync'])
def test_full_disk_names_the_path_and_keeps_the_old_file(
        tmp_path, monkeypatch, where):
    path = tmp_path / 'out.txt'
    path.write_text('old')
    with pytest.raises(DiskFullError) as info:
        with atomic_write(str(path)) as temporary:
            with open(temporary, 'w') as f:
                f.write('half written')
            if where == 'write':
                no_space()
            monkeypatch.setattr(files.os, 'fsync', no_space)
    message = str(info.value)
    assert message.startswith(f'cannot write {path}: no space left')
    assert 'unchanged' in message and info.value.errno == errno.ENOSPC
    assert path.read_text() == 'old' and leftovers(tmp_path) == []


def test_torch_write_failure_is_a_full_disk(tmp_path):
    """torch.save reports a failed write as a RuntimeError."""
    path = tmp_path / 'x.pth'
    with pytest.raises(DiskFullError, match='x.pth'):
        with atomic_write(str(path)):
            raise RuntimeError('PytorchStreamWriter failed writing file '
                               'data/0: file write failed')
    assert not path.exists() and leftovers(tmp_path) == []


def test_other_os_errors_name_the_path(tmp_path):
    with pytest.raises(WriteError, match='cannot write .*no_dir'):
        with atomic_write(str(tmp_path / 'f' / 'no_dir')):
            raise PermissionError(errno.EACCES, 'Permission denied')


def test_remove_temporaries_only_removes_ours(tmp_path):
    (tmp_path / '.iter_4.pth.ab12_xyz.tmp.pth').write_text('')
    (tmp_path / '.last_checkpoint.Ab12cd34.tmp').write_text('')
    (tmp_path / 'iter_4.pth').write_text('')
    (tmp_path / '.hidden').write_text('')
    assert remove_temporaries(str(tmp_path)) == 2
    assert sorted(os.listdir(tmp_path)) == ['.hidden', 'iter_4.pth']


def test_sha256_mismatch_names_file_hashes_and_fix(tmp_path):
    path = tmp_path / 'w.safetensors'
    path.write_bytes(b'weights')
    sums = tmp_path / 'SHA256SUMS'
    good = hashlib.sha256(b'weights').hexdigest()
    sums.write_text(f'# comment\n{good}  w.safetensors\n')
    assert verify_sha256(str(path), str(sums)) == good
    assert verify_sha256(str(sums), str(sums)) is None  # not listed
    path.write_bytes(b'weightz')  # a flipped byte
    with pytest.raises(ValueError) as info:
        verify_sha256(str(path), str(sums))
    message = str(info.value)
    assert str(path) in message and good in message
    assert hashlib.sha256(b'weightz').hexdigest() in message
    assert 'restore it' in message


def test_shipped_checkpoints_match_their_recorded_hashes():
    from projects.glide.api import CHECKSUMS, ROOT
    names = files.read_sums(CHECKSUMS)
    shipped = {name for name in os.listdir(os.path.join(ROOT, 'checkpoints'))
               if name.endswith('.safetensors')}
    assert set(names) == shipped and 'glide_shapes-32.safetensors' in shipped
    for name in names:
        verify_sha256(os.path.join(ROOT, 'checkpoints', name), CHECKSUMS)


def test_training_checkpoint_on_a_full_disk(tmp_path, monkeypatch):
    """The second checkpoint's write fails half way (ENOSPC): training stops
    with one line naming the file; iter_1.pth, last_checkpoint and nothing
    else are there, and --resume continues from iter_1."""
    from mmengine.fileio.backends import LocalBackend
    from tests.tools.test_train_test import CONFIG
    from projects.glide.shapes import write_dataset
    from tools.train import main
    data = tmp_path / 'data'
    write_dataset(str(data), 4, size=16)
    put = LocalBackend.put
    calls = []

    def put_half_then_fail(self, obj, filepath):
        calls.append(filepath)
        if len(calls) == 2:
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
            no_space()
        return put(self, obj, filepath)

    monkeypatch.setattr(LocalBackend, 'put', put_half_then_fail)
    work = tmp_path / 'work'
    argv = [CONFIG, '--work-dir', str(work), '--no-validate', '--cfg-options',
            f'train_dataloader.dataset.data_root={data}',
            'train_cfg.max_iters=2', 'default_hooks.checkpoint.interval=1']
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert str(info.value).startswith(
        f'tools/train.py: cannot write {work / "iter_2.pth"}: no space left')
    assert not (work / 'iter_2.pth').exists() and leftovers(work) == []
    assert (work / 'last_checkpoint').read_text() == str(work / 'iter_1.pth')
    assert torch.load(work / 'iter_1.pth', weights_only=False)['meta'][
        'iter'] == 1
    monkeypatch.setattr(LocalBackend, 'put', put)
    runner = main(argv[:1] + ['--resume'] + argv[1:])
    assert runner.iter == 2 and (work / 'iter_2.pth').exists()


def test_published_checkpoint_on_a_full_disk(tmp_path, monkeypatch):
    from tools.publish_checkpoint import main
    ckpt = tmp_path / 'iter_1.pth'
    torch.save({'state_dict': {'w': torch.ones(3)}, 'meta': {'iter': 1}},
               ckpt)
    out = tmp_path / 'pub' / 'model.safetensors'
    main([str(ckpt), str(out)])
    before = out.read_bytes()
    torch.save({'state_dict': {'w': torch.zeros(3)}, 'meta': {'iter': 2}},
               ckpt)
    monkeypatch.setattr(files.os, 'fsync', no_space)
    with pytest.raises(SystemExit) as info:
        main([str(ckpt), str(out)])
    assert str(info.value).startswith(
        f'publish_checkpoint.py: cannot write {out}: no space left')
    assert out.read_bytes() == before and leftovers(out.parent) == []


def test_png_on_a_full_disk(tmp_path, monkeypatch):
    from projects.glide.api import save_png
    path = tmp_path / 'sample.png'
    save_png(Image.new('RGB', (4, 4), 'red'), str(path), {'seed': 0})
    original = Image.Image.save

    def save_half(self, fp, *args, **kwargs):
        original(self, fp, *args, **kwargs)
        with open(fp, 'r+b') as f:
            f.truncate(20)
        no_space()

    monkeypatch.setattr(Image.Image, 'save', save_half)
    with pytest.raises(DiskFullError, match=f'cannot write {path}'):
        save_png(Image.new('RGB', (4, 4), 'blue'), str(path), {'seed': 1})
    monkeypatch.undo()
    with Image.open(path) as img:
        assert img.getpixel((0, 0)) == (255, 0, 0)
    assert leftovers(tmp_path) == []


def test_dataset_on_a_full_disk_keeps_the_old_index(tmp_path, monkeypatch):
    from projects.glide.shapes import read_dataset, write_dataset
    write_dataset(str(tmp_path), 3, seed=0, size=16)
    before = read_dataset(str(tmp_path))
    calls = []

    def fail_third_file(fd):  # each file: its fsync, its folder's
        calls.append(fd)
        if len(calls) == 5:
            no_space()

    monkeypatch.setattr(files.os, 'fsync', fail_third_file)
    with pytest.raises(DiskFullError, match='000002.png'):
        write_dataset(str(tmp_path), 3, seed=1, size=16)
    assert read_dataset(str(tmp_path)) == before
    assert leftovers(tmp_path / 'images') == []


def test_write_text(tmp_path):
    write_text(str(tmp_path / 'p'), 'a\n')
    assert (tmp_path / 'p').read_text() == 'a\n'
