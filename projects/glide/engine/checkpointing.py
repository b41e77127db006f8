"""Training checkpoints that a kill or a full disk cannot leave half
written.

mmengine's ``Runner.save_checkpoint`` writes ``iter_N.pth`` in place and its
``CheckpointHook`` then writes the ``last_checkpoint`` pointer in place,
after removing the oldest checkpoint: a process killed during the write
leaves a truncated ``.pth`` (and ``--resume`` fails on it), one killed
between the removal and the write can leave ``last_checkpoint`` naming a
removed file. Here:

* :class:`GlideRunner` writes each checkpoint with
  :func:`projects.glide.files.atomic_write` (a temporary name, ``fsync``,
  ``os.replace``);
* :class:`GlideCheckpointHook` writes the pointer the same way, only after
  its checkpoint is complete, and removes the oldest checkpoint after that;
  it removes the temporary files a killed run left when training starts.

So ``last_checkpoint`` always names a complete checkpoint, and a resumed
run continues from the last one written.
"""
import copy
import os.path as osp

from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner

from mmagic.registry import HOOKS, RUNNERS
from ..files import atomic_write, remove_temporaries, write_text


class TextCachedConfig(Config):
    """A ``Config`` that formats its ``pretty_text`` once: mmengine's
    Runner formats the whole config with yapf (about 0.8 s for a GLIDE
    config) for the log, the config dump and every checkpoint's ``meta``.
    The runner's config does not change once it is built."""

    @property
    def pretty_text(self) -> str:
        text = self.__dict__.get('_cached_pretty_text')
        if text is None:
            text = super().pretty_text
            object.__setattr__(self, '_cached_pretty_text', text)
        return text


@RUNNERS.register_module()
class GlideRunner(Runner):
    """mmengine's ``Runner`` whose checkpoints are written whole or not at
    all (local folders; other backends as mmengine writes them), and whose
    config text is formatted once (:class:`TextCachedConfig`)."""

    @classmethod
    def from_cfg(cls, cfg) -> 'GlideRunner':
        cached = copy.copy(cfg)
        object.__setattr__(cached, '__class__', TextCachedConfig)
        return super().from_cfg(cached)

    def save_checkpoint(self, out_dir: str, filename: str, *args, **kwargs):
        """As ``Runner.save_checkpoint``, through a temporary file.

        Raises:
            projects.glide.files.DiskFullError: The disk is full (the older
                checkpoints are unchanged).
        """
        remote = '://' in str(out_dir) or kwargs.get('backend_args') or \
            kwargs.get('file_client_args') or (args and args[0])
        if remote:
            return super().save_checkpoint(out_dir, filename, *args,
                                           **kwargs)
        with atomic_write(osp.join(out_dir, filename)) as temporary:
            super().save_checkpoint(osp.dirname(temporary),
                                    osp.basename(temporary), *args, **kwargs)


@HOOKS.register_module()
class GlideCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` (same arguments) with a
    ``last_checkpoint`` that always names a complete checkpoint: written
    atomically after it, the oldest checkpoint (``max_keep_ckpts``) removed
    last."""

    def before_train(self, runner) -> None:
        super().before_train(runner)
        if is_main_process() and '://' not in str(self.out_dir):
            for folder in {self.out_dir, runner.work_dir}:
                remove_temporaries(folder)

    def _keep(self, runner, step: int):
        """Record ``step`` among the kept checkpoints; the step whose
        checkpoint is then to be removed, or None."""
        if self.max_keep_ckpts <= 0 or (self.keep_ckpt_ids and
                                        self.keep_ckpt_ids[-1] == step):
            return None
        dropped = None
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            dropped = self.keep_ckpt_ids.popleft()
        self.keep_ckpt_ids.append(step)
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
        return dropped

    def _remove(self, step: int) -> None:
        """Remove the checkpoint of ``step`` if it is there."""
        path = self.file_backend.join_path(self.out_dir,
                                           self.filename_tmpl.format(step))
        if self.file_backend.isfile(path):
            self.file_backend.remove(path)
        elif self.file_backend.isdir(path):  # deepspeed's are folders
            self.file_backend.rmtree(path)

    def _save_checkpoint_with_step(self, runner, step, meta):
        dropped = self._keep(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(
            self.out_dir, filename, self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler, meta=meta,
            by_epoch=self.by_epoch, backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        write_text(osp.join(runner.work_dir, 'last_checkpoint'),
                   self.last_ckpt)
        if dropped is not None and dropped != step:
            self._remove(dropped)
