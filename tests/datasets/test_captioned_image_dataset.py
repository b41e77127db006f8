"""CaptionedImageDataset: JSONL/CSV annotations, clear errors, skipping."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from projects.glide.datasets import CaptionedImageDataset

PIPELINE = [
    dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
    dict(type='CenterCropLongEdge', keys=['img']),
    dict(type='Resize', keys=['img'], scale=(16, 16), keep_ratio=False,
         interpolation='area'),
    dict(type='PackInputs', keys=['img'])
]


def write_folder(root, rows, fmt='jsonl'):
    (root / 'images').mkdir(exist_ok=True)
    for i, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
        img = np.zeros((20, 24, 3), np.uint8)
        img[...] = colour
        Image.fromarray(img).save(root / 'images' / f'{i}.png')
    if fmt == 'jsonl':
        (root / 'ann.jsonl').write_text(
            ''.join(json.dumps(r) + '\n' for r in rows))
        return str(root / 'ann.jsonl')
    lines = ['path,caption'] + [f'{r["path"]},"{r["caption"]}"' for r in rows]
    (root / 'ann.csv').write_text('\n'.join(lines) + '\n')
    return str(root / 'ann.csv')


GOOD = [{'path': 'images/0.png', 'caption': 'a red square'},
        {'path': 'images/1.png', 'caption': 'a blue one, sharp'}]


@pytest.mark.parametrize('fmt', ['jsonl', 'csv'])
def test_items_are_packed_images_with_prompts(tmp_path, fmt):
    ann = write_folder(tmp_path, GOOD, fmt)
    ds = CaptionedImageDataset(ann, data_root=str(tmp_path), pipeline=PIPELINE)
    assert len(ds) == 2
    item = ds[0]
    assert item['inputs'].shape == (3, 16, 16)
    assert item['data_samples'].prompt == 'a red square'
    assert ds[1]['data_samples'].prompt == 'a blue one, sharp'


def test_preprocessor_gives_rgb_in_minus_one_one(tmp_path):
    from mmagic.registry import MODELS
    ann = write_folder(tmp_path, GOOD)
    ds = CaptionedImageDataset(ann, data_root=str(tmp_path), pipeline=PIPELINE)
    pre = MODELS.build(dict(type='DataPreprocessor', mean=[127.5],
                            std=[127.5]))
    batch = pre(dict(inputs=[ds[0]['inputs'], ds[1]['inputs']],
                     data_samples=[ds[0]['data_samples'],
                                   ds[1]['data_samples']]), True)
    x = batch['inputs']
    assert x.min() >= -1 and x.max() <= 1
    red = x[0].mean(dim=(1, 2))
    torch.testing.assert_close(red, torch.tensor([1.0, -1.0, -1.0]))


BAD = [
    ([{'path': 'images/9.png', 'caption': 'gone'}], 'image not found'),
    ([{'path': 'images/0.png', 'caption': '  '}], 'empty caption'),
    ([{'caption': 'no path'}], "no 'path'"),
    ([{'path': 'images/0.png', 'caption': 5}],
     r"ann.jsonl:3: 'caption' is not a string: 5 \(int\) for images/0.png"),
    ([{'path': 'images/0.png', 'caption': None}],
     "'caption' is not a string: None"),
    ([{'path': 7, 'caption': 'x'}], "'path' is not a non-empty string: 7"),
]


@pytest.mark.parametrize('rows,match', BAD)
def test_bad_items_raise_or_are_skipped_with_a_count(tmp_path, rows, match):
    ann = write_folder(tmp_path, GOOD + rows)
    with pytest.raises(ValueError, match=match):
        CaptionedImageDataset(ann, data_root=str(tmp_path), pipeline=PIPELINE)
    ds = CaptionedImageDataset(ann, data_root=str(tmp_path),
                               pipeline=PIPELINE, on_error='skip')
    assert len(ds) == 2 and ds.num_skipped == 1


def test_corrupt_image_is_found_when_the_dataset_is_built(tmp_path):
    """Before training starts, in training and validation datasets alike."""
    ann = write_folder(tmp_path, GOOD)
    (tmp_path / 'images' / '1.png').write_bytes(b'not a png')
    for test_mode in (False, True):
        with pytest.raises(ValueError,
                           match=r'ann.jsonl:2: unreadable image: .*1.png'):
            CaptionedImageDataset(ann, data_root=str(tmp_path),
                                  pipeline=PIPELINE, test_mode=test_mode)
        ds = CaptionedImageDataset(ann, data_root=str(tmp_path),
                                   pipeline=PIPELINE, on_error='skip',
                                   test_mode=test_mode)
        assert len(ds) == 1 and ds.num_skipped == 1
        assert ds[0]['data_samples'].prompt == 'a red square'


def test_image_failing_after_the_check(tmp_path):
    """Unchecked (check_images=False) or changed since: replaced by another
    item in training; named in validation/test, which cannot skip."""
    ann = write_folder(tmp_path, GOOD)
    (tmp_path / 'images' / '1.png').write_bytes(b'not a png')
    kw = dict(data_root=str(tmp_path), pipeline=PIPELINE, check_images=False)
    ds = CaptionedImageDataset(ann, **kw)
    with pytest.raises(ValueError, match='cannot load .*1.png'):
        ds[1]
    ds = CaptionedImageDataset(ann, on_error='skip', **kw)
    assert ds[1]['data_samples'].prompt == 'a red square'  # another item
    assert ds.num_skipped == 1
    ds = CaptionedImageDataset(ann, on_error='skip', test_mode=True, **kw)
    with pytest.raises(ValueError,
                       match='cannot load .*1.png.*validation/test cannot '
                       'replace an item'):
        ds[1]


@pytest.mark.parametrize('fmt', ['jsonl', 'csv'])
def test_wrong_field_names_are_named(tmp_path, fmt):
    """Not "missing images or empty captions": the fields are missing."""
    rows = [{'file': r['path'], 'text': r['caption']} for r in GOOD]
    write_folder(tmp_path, [])  # the images
    if fmt == 'jsonl':
        ann = tmp_path / 'ann.jsonl'
        ann.write_text(''.join(json.dumps(r) + '\n' for r in rows))
        match = ("no 'path' field: its fields are 'file', 'text'; set "
                 'path_key and caption_key')
    else:
        ann = tmp_path / 'ann.csv'
        ann.write_text('file,text\nimages/0.png,a\n')
        match = "ann.csv: no 'path' column: its fields are 'file', 'text'"
    for on_error in ('raise', 'skip'):
        with pytest.raises(ValueError, match=match):
            CaptionedImageDataset(str(ann), data_root=str(tmp_path),
                                  on_error=on_error)
    ds = CaptionedImageDataset(str(ann), data_root=str(tmp_path),
                               path_key='file', caption_key='text',
                               pipeline=PIPELINE)
    assert len(ds) == (2 if fmt == 'jsonl' else 1)


def test_skipped_items_are_summarised_by_cause(tmp_path):
    ann = write_folder(tmp_path, [
        {'path': 'images/8.png', 'caption': 'a'},
        {'path': 'images/9.png', 'caption': 'b'},
        {'path': 'images/0.png', 'caption': 5}])
    with pytest.raises(ValueError) as err:
        CaptionedImageDataset(ann, data_root=str(tmp_path), on_error='skip')
    text = str(err.value)
    assert 'no usable items of 3: skipped 2 image not found (first: ' in text
    assert 'ann.jsonl:1: image not found: ' in text
    assert "; 1 'caption' is not a string (first: " in text


def test_bad_annotation_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='annotation file'):
        CaptionedImageDataset(str(tmp_path / 'none.jsonl'))
    (tmp_path / 'a.txt').write_text('x')
    with pytest.raises(ValueError, match='.jsonl or .csv'):
        CaptionedImageDataset(str(tmp_path / 'a.txt'))
    (tmp_path / 'b.jsonl').write_text('{"path": \n')
    with pytest.raises(ValueError, match='b.jsonl:1: not JSON'):
        CaptionedImageDataset(str(tmp_path / 'b.jsonl'))
    with pytest.raises(ValueError, match="on_error must be"):
        CaptionedImageDataset(str(tmp_path / 'b.jsonl'), on_error='ignore')


@pytest.mark.parametrize('line,match', [
    ('{"path": "images/0.png", "caption"\n',
     r"ann.jsonl:2: not JSON: Expecting ':' delimiter"),
    ('["images/0.png", "a list"]\n',
     r"ann.jsonl:2: not a JSON object: list; each line must be an object "
     r"with 'path' and 'caption'"),
])
def test_a_broken_json_line_raises_or_is_skipped(tmp_path, line, match):
    """A line that is not a JSON object is a bad item like any other: named
    with its line number, or skipped and counted with on_error='skip'."""
    ann = write_folder(tmp_path, GOOD)
    first, second = open(ann).read().splitlines(keepends=True)
    with open(ann, 'w') as f:
        f.write(first + line + second)
    with pytest.raises(ValueError, match=match + r".*\(on_error='skip' "
                       r'skips such items\)'):
        CaptionedImageDataset(ann, data_root=str(tmp_path), pipeline=PIPELINE)
    ds = CaptionedImageDataset(ann, data_root=str(tmp_path),
                               pipeline=PIPELINE, on_error='skip')
    assert ds.num_skipped == 1
    assert [ds[i]['data_samples'].prompt for i in range(len(ds))] == \
        ['a red square', 'a blue one, sharp']
