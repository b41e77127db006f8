"""Procedural captioned shape scenes and a pixel-based judge of them.

See ``scenes`` (the generator and renderer) and ``judge`` (reads the
attributes back from pixels, scores images against captions).
"""
from .judge import caption_accuracy, diversity, judge_image, to_uint8_images
from .scenes import (BACKGROUNDS, CAPTION_KEYS, COLOURS, POSITIONS, SHAPES,
                     SIZES, TEMPLATES, TEXTURES, caption_attributes,
                     generate_dataset, make_caption, make_scene, make_scenes,
                     parse_caption, read_dataset, render, value_counts,
                     write_dataset)

__all__ = [
    'BACKGROUNDS', 'CAPTION_KEYS', 'COLOURS', 'POSITIONS', 'SHAPES', 'SIZES',
    'TEMPLATES', 'TEXTURES', 'caption_accuracy', 'caption_attributes',
    'diversity', 'generate_dataset', 'judge_image', 'make_caption',
    'make_scene', 'make_scenes', 'parse_caption', 'read_dataset', 'render',
    'to_uint8_images', 'value_counts', 'write_dataset'
]
