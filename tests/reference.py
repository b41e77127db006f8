"""Helpers that load the reference (OpenAI) golden cases into our networks."""
import torch

from mmagic.registry import MODELS
from projects.glide.models import openai_to_mmagic
from projects.glide.models.checkpoint import unet_config_from_openai
from tests.conftest import load_case

PROMPT = 'an oil painting of a corgi'  # prompt 0 of every case


def build_reference_case(case, manifest):
    """Our network for a golden case, with its OpenAI weights converted and
    loaded strictly; and the case's tensors."""
    data = load_case(case)
    options = manifest['cases'][case]['options']
    net = MODELS.build(unet_config_from_openai(options)).eval()
    openai_sd = {k[len('state_dict.'):]: v for k, v in data.items()
                 if k.startswith('state_dict.')}
    net.load_state_dict(openai_to_mmagic(openai_sd), strict=True)
    return net, data


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
