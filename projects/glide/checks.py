"""Argument checks that accept what Python users pass for numbers (Python
numbers, numpy scalars, 0-d tensors) and reject the rest with an error naming
the argument and the accepted range."""
import math
import numbers
import unicodedata
from typing import List, Optional

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


def check_scale(value, name: str) -> float:
    """A guidance scale: a finite number >= 0 (1 turns classifier-free
    guidance off, 0 samples unconditionally)."""
    return check_float(value, name, 0)


def check_seed(seed, name: str = 'seed') -> int:
    """A random seed: an int in [0, 2**64 - 1]."""
    if isinstance(seed, (str, bytes)) or seed is None:
        raise TypeError(f'{name} must be an int in [0, 2**64 - 1], got '
                        f'{describe(seed)}')
    return check_int(seed, name, 0, 2**64 - 1, high_text='2**64 - 1')


def check_steps(value, name: str, num_train_timesteps: int = 1000):
    """Sampler steps: None (the scheduler's default), an int in [1, T] or a
    respacing string (``'100'``, ``'fast27'``, ``'ddim50'``), T being the
    training process's steps.

    Returns:
        None | int | str: ``value``, an int as a Python int.
    """
    if value is None:
        return None
    from .models.diffusion import space_timesteps
    expected = (f'{name} must be an int in [1, {num_train_timesteps}] or '
                "a respacing string ('100', 'fast27', 'ddim50', "
                "'10,10,3,2,2')")
    if isinstance(value, str):
        try:
            space_timesteps(num_train_timesteps, value)
        except (ValueError, TypeError) as err:
            raise ValueError(f'{expected}, got {value!r}: {err}') from None
        return value
    try:
        return check_int(value, name, 1, num_train_timesteps)
    except ValueError:
        raise ValueError(f'{expected}, got {describe(value)}') from None


#: The longest prompt accepted, in characters (as the web page's). GLIDE's
#: tokenizer keeps the first 128 tokens (the shapes models 16), about 4
#: characters of English each: a far longer prompt is refused.
MAX_PROMPT_CHARS = 1000
#: Whitespace control characters, each replaced with a space.
WHITESPACE_CONTROLS = '\t\n\r\x0b\x0c'


def check_prompt_text(text: str, name: str = 'prompt') -> str:
    """A prompt with tabs and line breaks made spaces; one with other
    control characters or over :data:`MAX_PROMPT_CHARS` is refused.

    Raises:
        ValueError: naming ``name``, the character or the limit.
    """
    if len(text) > MAX_PROMPT_CHARS:
        raise ValueError(
            f'{name} has {len(text)} characters; at most {MAX_PROMPT_CHARS} '
            'are accepted (the model reads the first 128 tokens, about '
            '500 characters; the shapes models 16): shorten it')
    for i, char in enumerate(text):
        if char in WHITESPACE_CONTROLS:
            continue
        if unicodedata.category(char) in ('Cc', 'Cs'):
            raise ValueError(
                f'{name} has a control character U+{ord(char):04X} at '
                f'position {i + 1}: remove it (tabs and line breaks are read '
                'as spaces)')
    return ''.join(' ' if c in WHITESPACE_CONTROLS else c for c in text)


def check_prompts(prompt, batch_size: Optional[int], name: str = 'prompt'
                  ) -> List[str]:
    """One prompt per sample: a str (repeated ``batch_size`` times) or a
    list of str (of length ``batch_size``, or one prompt repeated), each
    checked with :func:`check_prompt_text`."""
    if batch_size is not None:
        batch_size = check_int(batch_size, 'batch_size', 1)
    if prompt is None:
        raise ValueError(f'{name} is required: a str or a list of str '
                         '("" samples unconditionally)')
    if isinstance(prompt, str):
        return [check_prompt_text(prompt, name)] * (batch_size or 1)
    if not isinstance(prompt, (list, tuple)) or not prompt:
        raise TypeError(f'{name} must be a str or a non-empty list of '
                        f'str, got {describe(prompt)}')
    for p in prompt:
        if not isinstance(p, str):
            raise TypeError(f'{name} must contain only str, got '
                            f'{type(p).__name__}')
    prompt = [check_prompt_text(p, name) for p in prompt]
    if batch_size is not None and len(prompt) != batch_size:
        if len(prompt) != 1:
            raise ValueError(
                f'{name} has {len(prompt)} prompts but batch_size is '
                f'{batch_size}: give one prompt or one per sample')
        prompt = prompt * batch_size
    return prompt
