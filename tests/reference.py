"""Helpers that load the reference (OpenAI) golden cases into our networks.

A case's weights are not stored: :func:`reference_state_dict` draws them
from the seed and shapes in the manifest, exactly as
``tests/fixtures/make_reference_fixtures.py`` did before running the
reference.
"""
from functools import lru_cache
from typing import Dict

import torch

from mmagic.registry import MODELS
from projects.glide.models import openai_to_mmagic
from projects.glide.models.checkpoint import unet_config_from_openai
from tests.conftest import load_case, read_json
from tests.fixtures.make_reference_fixtures import draw_weights

PROMPT = 'an oil painting of a corgi'  # prompt 0 of every case


@lru_cache(maxsize=None)
def _drawn(case: str) -> Dict[str, torch.Tensor]:
    if case == 'clip':
        entry = read_json('clip_manifest.json')
    else:
        entry = read_json('manifest.json')['cases'][case]
    weights = entry['weights']
    return draw_weights(weights['shapes'], weights['seed'], weights['std'])


def reference_state_dict(case: str) -> Dict[str, torch.Tensor]:
    """A golden case's weights under the reference's (OpenAI) key names.

    Args:
        case (str): ``'base'``, ``'upsample'``, ``'inpaint'``,
            ``'upsample_inpaint'`` or ``'clip'`` (keys ``text_encoder.*``
            and ``image_encoder.*``).

    Returns:
        dict: a fresh dict of fresh tensors (callers may change them).
    """
    return {k: v.clone() for k, v in _drawn(case).items()}


def build_reference_case(case, manifest):
    """Our network for a golden case, with its OpenAI weights converted and
    loaded strictly; and the case's stored tensors."""
    options = manifest['cases'][case]['options']
    net = MODELS.build(unet_config_from_openai(options)).eval()
    net.load_state_dict(openai_to_mmagic(reference_state_dict(case)),
                        strict=True)
    return net, load_case(case)


def reference_inputs(data, rows=slice(None)):
    """The case's extra network inputs (low_res, inpaint image and mask)."""
    extra = {}
    if 'forward.low_res' in data:
        extra['low_res'] = data['forward.low_res'][rows]
    if 'forward.inpaint_image' in data:
        extra['inpaint_image'] = data['forward.inpaint_image'][rows]
        extra['inpaint_mask'] = data['forward.inpaint_mask'][rows].float()
    return extra


def max_abs(a, b):
    return (torch.as_tensor(a) - torch.as_tensor(b)).abs().max().item()
