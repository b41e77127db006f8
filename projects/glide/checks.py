"""Argument checks that accept what Python users pass for numbers (Python
numbers, numpy scalars, 0-d tensors) and reject the rest with an error naming
the argument and the accepted range."""
import math
import numbers
from typing import Optional

import torch


def describe(value) -> str:
    """A short description of a value for an error message: its repr when
    short, else its type (and shape for arrays and tensors)."""
    shape = getattr(value, 'shape', None)
    if shape is not None and len(tuple(shape)) > 0:
        where = getattr(value, 'device', None)
        on = f' on {where}' if where is not None else ''
        return (f'{type(value).__module__}.{type(value).__name__} of shape '
                f'{tuple(shape)}{on}')
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + '...'
    return f'{text} ({type(value).__name__})'


def _scalar(value, name: str, expected: str):
    """``value`` as a Python int or float; None when it is no real number."""
    if isinstance(value, bool):
        return None
    if torch.is_tensor(value):
        if value.dim() != 0 or value.dtype.is_complex or \
                value.dtype == torch.bool:
            return None
        if value.device.type == 'meta':
            raise ValueError(f'{name} must be {expected}, got a tensor on '
                             'the meta device (it has no value)')
        value = value.item()
    if isinstance(value, numbers.Integral):  # int, numpy integers
        return int(value)
    if isinstance(value, numbers.Real):  # float, numpy floats
        return float(value)
    return None


def check_int(value, name: str, low: int, high: Optional[int] = None,
              high_text: Optional[str] = None) -> int:
    """An integral number in ``[low, high]`` as a Python int.

    Args:
        value: An int, a numpy integer or a 0-d integer tensor.
        name (str): The argument's name, for the error.
        low (int): Smallest accepted value.
        high (int, optional): Largest accepted value (None: no bound).
        high_text (str, optional): How to write ``high`` in the message
            (e.g. ``'2**64 - 1'``).

    Raises:
        ValueError: naming ``name`` and the range.
    """
    upper = 'inf' if high is None else (high_text or str(high))
    expected = f'an int in [{low}, {upper}]'
    number = _scalar(value, name, expected)
    if not isinstance(number, int) or number < low or (
            high is not None and number > high):
        raise ValueError(f'{name} must be {expected}, got {describe(value)}')
    return number


def check_float(value, name: str, low: float = -math.inf,
                high: float = math.inf, low_open: bool = False,
                high_open: bool = False) -> float:
    """A finite real number in a range as a Python float.

    Args:
        value: An int, a float, a numpy scalar or a 0-d tensor.
        name (str): The argument's name, for the error.
        low, high (float): The range's bounds.
        low_open, high_open (bool): Whether a bound is excluded.

    Raises:
        ValueError: naming ``name`` and the range.
    """
    if low == -math.inf and high == math.inf:
        expected = 'a finite number'
    elif high == math.inf:
        expected = f'a finite number {">" if low_open else ">="} {low:g}'
    else:
        expected = (f'a number in {"(" if low_open else "["}{low:g}, '
                    f'{high:g}{")" if high_open else "]"}')
    number = _scalar(value, name, expected)
    ok = number is not None and math.isfinite(number) and (
        number > low if low_open else number >= low) and (
            number < high if high_open else number <= high)
    if not ok:
        raise ValueError(f'{name} must be {expected}, got {describe(value)}')
    return float(number)
