"""GLIDE for MMagic: importing this package registers every module.

``from projects.glide.models import *`` makes the networks (``Text2ImUNet``,
``SuperResText2ImUNet``, ``InpaintText2ImUNet``,
``SuperResInpaintText2ImUNet``), the model (``Glide``/``GLIDE``) and the
CLIP guide (``NoisedCLIP``) and the
samplers (``GlideAncestralScheduler``, ``GlideDDIMScheduler``,
``GlideDPMSolverScheduler``) available in mmagic's registries, and makes
mmengine read checkpoints safely (no pickled code; ``.safetensors`` too).
"""
from ..runtime import (quiet_third_party_warnings,
                       silence_known_import_warnings)

# mmagic's model zoo imports diffusers, timm and controlnet_aux, whose
# import-time deprecation warnings we cannot act on; the known ones stay
# silent when mmagic.apis imports them later (the Quick Start's order).
silence_known_import_warnings()
with quiet_third_party_warnings():
    # Else mmagic's scheduler registry imports it (and diffusers' schedulers)
    # on the first model build, outside this block.
    import mmagic.models.diffusion_schedulers  # noqa: F401
    from .ancestral_scheduler import GlideAncestralScheduler
    from .checkpoint import (mmagic_to_openai, openai_to_mmagic,
                             read_state_dict, register_safe_checkpoint_loader)
    from .ddim_scheduler import GlideDDIMScheduler
    from .dpm_solver_scheduler import GlideDPMSolverScheduler
    from .glide import Glide
    from .noised_clip import NoisedCLIP
    from .attention import GlideAttentionBlock
    from .group_norm import GroupNorm32
    from .text2im_unet import (InpaintText2ImUNet, SuperResInpaintText2ImUNet,
                               SuperResText2ImUNet, Text2ImUNet)
    from .tokenizer import GlideTokenizer

register_safe_checkpoint_loader()

__all__ = [
    'Glide', 'NoisedCLIP', 'Text2ImUNet', 'SuperResText2ImUNet', 'InpaintText2ImUNet',
    'SuperResInpaintText2ImUNet', 'GlideAttentionBlock', 'GroupNorm32',
    'GlideTokenizer',
    'GlideAncestralScheduler', 'GlideDDIMScheduler', 'GlideDPMSolverScheduler',
    'openai_to_mmagic', 'mmagic_to_openai', 'read_state_dict'
]
