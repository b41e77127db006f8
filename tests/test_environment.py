"""The installed stack works together (tools/setup_env.sh's promise)."""
import importlib.metadata as md

import numpy


def test_pinned_stack():
    assert numpy.__version__.startswith('1.'), 'mmagic needs numpy<2'
    assert md.version('mmcv') == '2.1.0'
    assert md.version('mmengine') == '0.10.7'
    assert md.version('mmagic') == '1.2.0'
    assert md.version('torch').startswith('2.9.1')


def test_mmcv_has_compiled_ops():
    from mmcv.ops import nms
    import torch
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10.]])
    kept, _ = nms(boxes, torch.tensor([0.9, 0.8]), 0.5)
    assert len(kept) == 1


def test_mmagic_init_model_imports():
    from mmagic.apis import init_model
    assert callable(init_model)


def test_our_modules_are_registered_in_mmagic_scope():
    from mmagic.registry import DIFFUSION_SCHEDULERS, MODELS
    from mmengine.registry import DefaultScope
    import projects.glide.models  # noqa: F401
    assert DefaultScope.get_current_instance().scope_name == 'mmagic'
    for name in ('Glide', 'GLIDE', 'Text2ImUNet', 'SuperResText2ImUNet',
                 'InpaintText2ImUNet', 'SuperResInpaintText2ImUNet'):
        assert MODELS.get(name) is not None, name
    for name in ('GlideAncestralScheduler', 'GlideDDIMScheduler',
                 'GlideDPMSolverScheduler'):
        assert DIFFUSION_SCHEDULERS.get(name) is not None, name


def test_tokenizer_needs_no_download():
    from projects.glide.models.tokenizer import _default_ranks_path
    import os
    assert os.path.isfile(_default_ranks_path())
