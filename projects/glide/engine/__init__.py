"""GLIDE runner hooks, registered in mmagic's ``HOOKS``."""
from .glide_visualization_hook import GlideVisualizationHook

__all__ = ['GlideVisualizationHook']
