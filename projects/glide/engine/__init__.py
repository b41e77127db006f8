"""GLIDE runner hooks and runner, registered in mmagic's ``HOOKS`` and
``RUNNERS``."""
from .checkpointing import GlideCheckpointHook, GlideRunner
from .glide_visualization_hook import GlideVisualizationHook

__all__ = ['GlideCheckpointHook', 'GlideRunner', 'GlideVisualizationHook']
