"""Captions reach the model in training: a text path broken anywhere between
the dataset and the loss (prompt/image order after the data preprocessor's
stacking and splitting, caption dropout, the tokenizer, ``encode_text``, the
UNet's conditioning) makes this test fail.

The tiny config, at 8x8, is trained through ``tools/train.py`` on twelve
images whose captions name their colour and shape (every colour x shape, one
large centred shape on black); then each caption is sampled and the training
image nearest to the sample must be that caption's own image. With a broken
text path the model can only learn the average image or one image for every
caption: about one caption in twelve matches by chance.
"""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from mmagic.apis import init_model
from projects.glide.shapes import COLOURS, SHAPES, render
from tests.conftest import TEST_CONFIGS

CONFIG = str(TEST_CONFIGS / 'glide_tiny_train-16.py')
#: Captions whose nearest training image must be their own (of 12): most of
#: them. Measured 10 (1500 iterations, about 3 minutes on 2 cores); chance
#: level is 1, and a model that ignores its captions gets about that.
THRESHOLD = 7
ITERS = 1500
#: The tiny training config at 8x8 (to train in about a minute) with the
#: shapes demo model's recipe: Min-SNR-5, a text context that fits the
#: captions (3 tokens), 10 % caption dropout, a high learning rate.
RECIPE = """
_base_ = ['{base}']
image_size = 8
model = dict(
    unet=dict(image_size=8, attention_res=(8, 4), text_ctx=8),
    train_cfg=dict(min_snr_gamma=5.0, p_uncond=0.1),
    diffusion_scheduler=dict(type='GlideDDIMScheduler',
                             timestep_respacing='25'))
_pipeline = [
    dict(type='LoadImageFromFile', key='img', channel_order='rgb'),
    dict(type='PackInputs', keys=['img'])
]
train_dataloader = dict(
    batch_size=12, dataset=dict(data_root='{data}', pipeline=_pipeline))
val_dataloader = dict(dataset=dict(data_root='{data}', pipeline=_pipeline))
test_dataloader = val_dataloader
train_cfg = dict(max_iters={iters}, val_interval={iters})
optim_wrapper = dict(optimizer=dict(lr=3e-3))
default_hooks = dict(logger=dict(interval=100),
                     checkpoint=dict(interval={iters}))
"""


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    """Twelve 8x8 images, every colour x shape: a large shape drawn at 32 px
    in the top left quadrant, that quadrant cropped (the shape centred and
    filling it) and area-downsampled."""
    root = tmp_path_factory.mktemp('binding')
    (root / 'images').mkdir()
    images, captions = [], []
    with open(root / 'annotations.jsonl', 'w') as f:
        for i, (colour, shape) in enumerate(
                (c, s) for c in COLOURS for s in SHAPES):
            scene = render(dict(shape=shape, colour=colour, size='large',
                                position='top left', background='black'), 32)
            image = Image.fromarray(scene[:16, :16]).resize((8, 8), Image.BOX)
            image.save(root / 'images' / f'{i}.png')
            caption = f'a {colour} {shape}'
            f.write(json.dumps({'path': f'images/{i}.png',
                                'caption': caption}) + '\n')
            images.append(torch.from_numpy(np.array(image)).permute(2, 0, 1)
                          / 127.5 - 1)
            captions.append(caption)
    return str(root), torch.stack(images), captions


def test_each_caption_samples_its_own_image(tmp_path, dataset):
    from tools.train import main
    data_root, images, captions = dataset
    config = tmp_path / 'binding.py'
    config.write_text(RECIPE.format(base=CONFIG, data=data_root, iters=ITERS))
    main([str(config), '--work-dir', str(tmp_path)])
    model = init_model(str(config), str(tmp_path / f'iter_{ITERS}.pth'),
                       device='cpu')
    samples = model.infer(prompt=captions, guidance_scale=3.0,
                          num_inference_steps=25, seed=0)['samples']
    distances = ((samples[:, None] - images[None])**2).mean(dim=(2, 3, 4))
    nearest = distances.argmin(dim=1)
    matched = int((nearest == torch.arange(12)).sum())
    print(f'caption binding: {matched}/12 captions sample their own image '
          f'(threshold {THRESHOLD})')
    assert matched >= THRESHOLD, nearest.tolist()
