"""tools/kill_resume.py: training SIGKILLed at 20 random moments (about
half of them while a checkpoint's bytes are being written) and resumed each
time with --resume ends bit for bit where an uninterrupted run ends."""
import os
from collections import deque

import pytest
import torch

import projects.glide.engine.checkpointing as checkpointing
from projects.glide.engine.checkpointing import GlideCheckpointHook
from tools.kill_resume import check_work_dir, main


def test_twenty_kills_resume_from_complete_checkpoints_bit_exact(tmp_path):
    stats = main(['--kills', '20', '--iters', '4', '--work-dir',
                  str(tmp_path)])
    assert stats['tried'] == 20
    assert stats['survived'] == 20  # each kill left a loadable pointer
    assert stats['in_bytes'] >= 1  # some kills hit a checkpoint's bytes
    assert stats['runs'] >= 1 and stats['exact'] == stats['runs']


def test_check_work_dir_catches_a_truncated_checkpoint(tmp_path):
    """The harness's check can fail: what mmengine's in-place write leaves
    when killed (a truncated file named by last_checkpoint)."""
    path = tmp_path / 'iter_2.pth'
    torch.save({'meta': {'iter': 2}, 'state_dict': {'w': torch.ones(1000)}},
               path)
    assert check_work_dir(str(tmp_path))['pointer'] is None
    (tmp_path / 'last_checkpoint').write_text(str(path))
    assert check_work_dir(str(tmp_path))['pointer'] == str(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(Exception):
        check_work_dir(str(tmp_path))
    os.remove(path)
    with pytest.raises(AssertionError, match='last_checkpoint names'):
        check_work_dir(str(tmp_path))


def test_the_oldest_checkpoint_is_removed_after_the_pointer_moves(
        monkeypatch):
    """With max_keep_ckpts=1, mmengine removes the kept checkpoint before
    writing the next: a kill in between leaves last_checkpoint naming a
    removed file. Ours writes, moves the pointer, then removes."""
    calls = []

    class Backend:
        def join_path(self, *parts):
            return '/'.join(parts)

        def isfile(self, path):
            return True

        def remove(self, path):
            calls.append(('remove', path))

    class Hub:
        def update_info(self, *args):
            pass

    class Runner:
        work_dir = '/nonexistent-work-dir'
        message_hub = Hub()

        def save_checkpoint(self, out_dir, filename, *args, **kwargs):
            calls.append(('save', filename))

    hook = GlideCheckpointHook(interval=1, by_epoch=False, max_keep_ckpts=1)
    hook.file_backend, hook.out_dir = Backend(), 'out'
    hook.keep_ckpt_ids = deque([1], maxlen=1)
    monkeypatch.setattr(checkpointing, 'write_text', lambda path, text:
                        calls.append(('pointer', text)))
    hook._save_checkpoint_with_step(Runner(), 2, meta={})
    assert calls == [('save', 'iter_2.pth'), ('pointer', 'out/iter_2.pth'),
                     ('remove', 'out/iter_1.pth')]
