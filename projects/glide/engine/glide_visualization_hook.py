"""Saves grids of the samples made in validation and test."""
import torch
from mmengine.hooks import Hook
from mmengine.runner import BaseLoop
from torchvision.utils import make_grid

from mmagic.registry import HOOKS
from ..files import write_text


def training_iter(runner) -> int:
    """The training iteration the runner is at, without building anything.

    ``runner.iter`` builds the training loop, and so the training data
    loader, when it is still a config: a test run (``tools/test.py``) must
    need only the test data. A run that never trained is at iteration 0.

    Args:
        runner (Runner): The mmengine runner.

    Returns:
        int: The training loop's iteration, else 0.
    """
    loop = getattr(runner, '_train_loop', None)
    if isinstance(loop, BaseLoop):
        return loop.iter
    return 0


@HOOKS.register_module()
class GlideVisualizationHook(Hook):
    """Collect ``fake_img`` of each val/test output and, at the end of the
    epoch, write one grid image through the runner's visualizer (and so its
    vis backends: files under ``work_dir/<time>/vis_data``, TensorBoard...).

    Args:
        nrow (int): Images per grid row. Defaults to 8.
        max_images (int): At most this many images per grid. Defaults to 64.
    """

    priority = 'LOW'

    def __init__(self, nrow: int = 8, max_images: int = 64):
        self.nrow, self.max_images = nrow, max_images
        self._images, self._prompts = [], []

    def _collect(self, outputs):
        for out in outputs or []:
            if len(self._images) < self.max_images and 'fake_img' in out:
                self._images.append(torch.as_tensor(out.fake_img).float())
                self._prompts.append(out.get('prompt', ''))

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None):
        self._collect(outputs)

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None):
        self._collect(outputs)

    def _write(self, runner, mode):
        if not self._images:
            return
        grid = make_grid(torch.stack(self._images), nrow=self.nrow, padding=2)
        image = grid.clamp(0, 255).round().byte().permute(1, 2, 0).numpy()
        step = training_iter(runner)
        runner.visualizer.add_image(f'{mode}_samples', image, step=step)
        write_text(f'{runner.log_dir}/{mode}_prompts_{step}.txt',
                   '\n'.join(self._prompts) + '\n')
        self._images, self._prompts = [], []

    def after_val_epoch(self, runner, metrics=None):
        self._write(runner, 'val')

    def after_test_epoch(self, runner, metrics=None):
        self._write(runner, 'test')
