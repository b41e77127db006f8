"""Images with captions, from a folder and an annotation file."""
import csv
import json
import logging
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

    Bad items are found when the dataset is built (before training starts):
    a JSONL line that is not a JSON object, a missing ``path``/``caption``
    field, a caption that is not a non-empty
    string, a missing image file, and (``check_images``) a file that is not
    a readable image.

    Args:
        ann_file (str): The annotation file (``.jsonl`` or ``.csv``).
        data_root (str): Folder the paths are relative to.
        pipeline (list): mmagic transforms.
        on_error (str): ``'raise'`` an error naming the first bad item, or
            ``'skip'`` bad items: they are left out of the dataset (in
            training, validation and test alike), counted in
            :attr:`num_skipped` and summarised by cause in the log. An image
            that passed the check but fails to load later is replaced by
            another item in training and stops validation/test with an error
            naming it. Defaults to ``'raise'``.
        path_key, caption_key (str): The annotation's field names.
        check_images (bool): Open every image when the dataset is built
            (its header and, for PNG, its checksums; PIL's ``verify``);
            one over :data:`projects.glide.api.MAX_IMAGE_PIXELS` (8192 x
            8192; a decompression bomb) is a bad item too, found before it
            is decoded. Defaults to True. The images are then read by the
            pipeline (``LoadImageFromFile``, OpenCV: 3 channels, alpha
            dropped, 16 bits scaled to 8, CMYK, palette and greyscale
            converted).
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments.
    """

    def __init__(self, ann_file: str, data_root: str = '', pipeline=(),
                 on_error: str = 'raise', path_key: str = 'path',
                 caption_key: str = 'caption', check_images: bool = True,
                 **kwargs):
        if on_error not in ('raise', 'skip'):
            raise ValueError(f"on_error must be 'raise' or 'skip', got "
                             f'{on_error!r}')
        self.on_error = on_error
        self.path_key, self.caption_key = path_key, caption_key
        self.check_images = check_images
        self._skipped = {}  # cause -> [count, first place]
        self._corrupt = set()
        super().__init__(ann_file=ann_file, data_root=data_root,
                         pipeline=list(pipeline), **kwargs)

    def _rows(self):
        if not os.path.isfile(self.ann_file):
            raise FileNotFoundError(
                f'annotation file not found: {self.ann_file!r} (data_root '
                f'{self.data_root!r}; set the dataset\'s data_root, e.g. '
                '--cfg-options train_dataloader.dataset.data_root=DIR)')
        with open(self.ann_file, newline='', encoding='utf-8') as f:
            if self.ann_file.endswith('.csv'):
                reader = csv.DictReader(f)
                self._check_columns(reader.fieldnames or [])
                for line, row in enumerate(reader, start=2):
                    yield line, row
            elif self.ann_file.endswith(('.jsonl', '.json')):
                for line, text in enumerate(f, start=1):
                    if text.strip():
                        yield line, self._json_row(line, text)
            else:
                raise ValueError('ann_file must be .jsonl or .csv, got '
                                 f'{self.ann_file!r}')

    def _json_row(self, line: int, text: str):
        """The JSON object of one annotation line, or None when it is not
        one (raised or counted by :meth:`_problem`, as any bad item)."""
        where = f'{self.ann_file}:{line}'
        try:
            row = json.loads(text)
        except json.JSONDecodeError as err:
            self._problem(where, 'not JSON', str(err))
            return None
        if not isinstance(row, dict):
            self._problem(where, 'not a JSON object',
                          f'{type(row).__name__}; each line must be an '
                          f'object with {self.path_key!r} and '
                          f'{self.caption_key!r}')
            return None
        return row

    def _keys_hint(self, keys) -> str:
        return (f"its fields are {', '.join(map(repr, keys)) or 'none'}; set "
                'path_key and caption_key to the names of the image path and '
                'caption fields')

    def _check_columns(self, columns):
        """A CSV without the path or caption column is a format error,
        whatever ``on_error`` says."""
        for key in (self.path_key, self.caption_key):
            if key not in columns:
                raise ValueError(f'{self.ann_file}: no {key!r} column: '
                                 f'{self._keys_hint(columns)}')

    def _problem(self, where: str, cause: str, detail: str = ''):
        """Raise (``on_error='raise'``) or count a bad item by cause."""
        msg = f'{where}: {cause}: {detail}' if detail else f'{where}: {cause}'
        if self.on_error == 'raise':
            raise ValueError(msg + " (on_error='skip' skips such items)")
        entry = self._skipped.setdefault(cause, [0, msg])
        entry[0] += 1

    @property
    def num_skipped(self) -> int:
        """Items skipped: bad annotations, and unreadable images met."""
        return sum(n for n, _ in self._skipped.values()) + len(self._corrupt)

    def _skip_summary(self) -> str:
        return '; '.join(f'{n} {cause} (first: {first})'
                         for cause, (n, first) in self._skipped.items())

    def _image_error(self, path: str):
        """``(cause, detail)`` if ``path`` is no readable image, else
        None."""
        if not os.path.isfile(path):
            return 'image not found', path
        if self.check_images:
            from PIL import Image

            from ..api import MAX_IMAGE_PIXELS
            try:
                with Image.open(path) as img:
                    if img.width * img.height > MAX_IMAGE_PIXELS:
                        return 'image too large', (
                            f'{path} ({img.width}x{img.height}, over '
                            f'{MAX_IMAGE_PIXELS} pixels)')
                    img.verify()
            except Image.DecompressionBombError as err:  # PIL's limit
                return 'image too large', f'{path} ({err})'
            except Exception as err:  # PIL raises many kinds
                return 'unreadable image', f'{path} ({err})'
        return None

    def load_data_list(self) -> List[dict]:
        data_list, rows = [], 0
        for line, row in self._rows():
            rows += 1
            if row is None:  # not a JSON object: already counted
                continue
            where = f'{self.ann_file}:{line}'
            for key in (self.path_key, self.caption_key):
                if key not in row:
                    self._problem(where, f'no {key!r} field',
                                  self._keys_hint(list(row)))
                    break
            else:
                path, caption = row[self.path_key], row[self.caption_key]
                if not isinstance(path, str) or not path:
                    self._problem(where, f'{self.path_key!r} is not a '
                                  'non-empty string', repr(path))
                    continue
                if not isinstance(caption, str):
                    self._problem(where, f'{self.caption_key!r} is not a '
                                  'string', f'{caption!r} '
                                  f'({type(caption).__name__}) for {path}')
                    continue
                if not caption.strip():
                    self._problem(where, 'empty caption', path)
                    continue
                full = os.path.join(self.data_root, path)
                error = self._image_error(full)
                if error:
                    self._problem(where, *error)
                    continue
                data_list.append(dict(img_path=full, prompt=caption.strip()))
        if not data_list:
            why = f': skipped {self._skip_summary()}' if self._skipped else \
                ' (it is empty)'
            raise ValueError(f'{self.ann_file}: no usable items of {rows}'
                             f'{why}')
        if self._skipped:
            print_log(f'{self.ann_file}: skipped {self.num_skipped} of {rows} '
                      f'items: {self._skip_summary()}', logger='current',
                      level=logging.WARNING)
        return data_list

    def prepare_data(self, idx):
        try:
            return super().prepare_data(idx)
        except Exception as err:  # an image unreadable after all
            path = self.get_data_info(idx)['img_path']
            why = ' '.join(str(err).split())  # OpenCV's end in a newline
            if self.on_error == 'raise' or self.test_mode:
                where = ('validation/test cannot replace an item; '
                         if self.on_error == 'skip' else '')
                raise ValueError(
                    f'cannot load {path}: {why} ({where}it passed the check '
                    'when the dataset was built)') from err
            if path not in self._corrupt:
                self._corrupt.add(path)
                print_log(f'skipped unreadable image {path} ({why}); '
                          f'{self.num_skipped} skipped so far',
                          logger='current', level=logging.WARNING)
            return None  # BaseDataset then takes another item
