"""Images with captions, from a folder and an annotation file."""
import csv
import json
import os
from typing import List

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from mmagic.registry import DATASETS


@DATASETS.register_module()
class CaptionedImageDataset(BaseDataset):
    """Captioned images for training GLIDE.

    The annotation file is JSONL (one ``{"path": ..., "caption": ...}`` per
    line) or CSV (a header with ``path`` and ``caption`` columns); paths are
    relative to ``data_root``. Each item gives ``img_path`` and ``prompt`` to
    the pipeline (e.g. ``LoadImageFromFile``, ``CenterCropLongEdge``,
    ``Resize``, ``Flip``, ``PackInputs``).

    Args:
        ann_file (str): The annotation file (``.jsonl`` or ``.csv``).
        data_root (str): Folder the paths are relative to.
        pipeline (list): mmagic transforms.
        on_error (str): What to do with a missing file or empty caption (at
            start) and an unreadable image (when loaded): ``'raise'`` an
            error naming it, or ``'skip'`` it and count it in
            :attr:`num_skipped` (a corrupt image is replaced by another
            item). Defaults to ``'raise'``.
        path_key, caption_key (str): The annotation's field names.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments.
    """

    def __init__(self, ann_file: str, data_root: str = '', pipeline=(),
                 on_error: str = 'raise', path_key: str = 'path',
                 caption_key: str = 'caption', **kwargs):
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"on_error must be 'raise' or 'skip', got "
                             f'{on_error!r}')
        self.on_error = on_error
        self.path_key, self.caption_key = path_key, caption_key
        self._num_bad_annotations = 0
        self._corrupt = set()
        super().__init__(ann_file=ann_file, data_root=data_root,
                         pipeline=list(pipeline), **kwargs)

    def _rows(self):
        if not os.path.isfile(self.ann_file):
            raise FileNotFoundError(
                f'annotation file not found: {self.ann_file!r}')
        with open(self.ann_file, newline='', encoding='utf-8') as f:
            if self.ann_file.endswith('.csv'):
                for line, row in enumerate(csv.DictReader(f), start=2):
                    yield line, row
            elif self.ann_file.endswith(('.jsonl', '.json')):
                for line, text in enumerate(f, start=1):
                    if text.strip():
                        try:
                            yield line, json.loads(text)
                        except json.JSONDecodeError as err:
                            raise ValueError(f'{self.ann_file}:{line}: not '
                                             f'JSON ({err})') from None
            else:
                raise ValueError('ann_file must be .jsonl or .csv, got '
                                 f'{self.ann_file!r}')

    def _problem(self, msg: str):
        if self.on_error == 'raise':
            raise ValueError(msg + " (on_error='skip' skips such items)")
        self._num_bad_annotations += 1

    @property
    def num_skipped(self) -> int:
        """Items skipped: bad annotations, and unreadable images met."""
        return self._num_bad_annotations + len(self._corrupt)

    def load_data_list(self) -> List[dict]:
        data_list = []
        for line, row in self._rows():
            where = f'{self.ann_file}:{line}'
            path, caption = row.get(self.path_key), row.get(self.caption_key)
            if not isinstance(path, str) or not path:
                self._problem(f'{where}: no {self.path_key!r}')
                continue
            full = os.path.join(self.data_root, path)
            if not os.path.isfile(full):
                self._problem(f'{where}: image not found: {full}')
                continue
            if not isinstance(caption, str) or not caption.strip():
                self._problem(f'{where}: empty caption for {path}')
                continue
            data_list.append(dict(img_path=full, prompt=caption.strip()))
        if self._num_bad_annotations:
            print_log(f'{self.ann_file}: skipped {self._num_bad_annotations} '
                      'items '
                      '(missing images or empty captions)', logger='current')
        if not data_list:
            raise ValueError(f'{self.ann_file}: no usable items')
        return data_list

    def prepare_data(self, idx):
        try:
            return super().prepare_data(idx)
        except Exception as err:  # an unreadable image
            path = self.get_data_info(idx)['img_path']
            if self.on_error == 'raise' or self.test_mode:
                raise ValueError(f'cannot load {path}: {err}') from err
            if path not in self._corrupt:
                self._corrupt.add(path)
                print_log(f'skipped unreadable image {path} ({err}); '
                          f'{self.num_skipped} skipped so far',
                          logger='current', level=30)
            return None  # BaseDataset then takes another item
