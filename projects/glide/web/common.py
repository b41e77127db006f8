"""What the web page's worker and layout share: its errors, the field
checks, and the progress line."""
import sys
import time

import gradio as gr

from ..checks import check_prompt_text


class Cancelled(Exception):
    """Raised from the sampling callback when the page asked to stop."""


def page_error(message):
    """The page's error for a refused request: the message in the page and
    one line in the server log, no traceback.

    Args:
        message (str): What is wrong and what is accepted.

    Returns:
        gr.Error: To raise.
    """
    print(f'web_demo: refused: {message}', file=sys.stderr, flush=True)
    return gr.Error(message, print_exception=False)


def checked(check, value, *args):
    """``check(value, *args)`` (a checker of ``projects/glide/checks.py``)
    with its error as the page's error.

    The page's number fields give floats: a whole one is passed as an int.
    """
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        return check(value, *args)
    except (ValueError, TypeError) as err:
        raise page_error(f'{err}.') from None


def check_text(text, field):
    """A prompt field's text, stripped, with the library's rule
    (:func:`projects.glide.checks.check_prompt_text`: at most
    ``MAX_PROMPT_CHARS`` characters, no control characters; tabs and line
    breaks read as spaces), its error as the page's.

    Args:
        text (str | None): The field's value.
        field (str): The field's name, for the error.

    Returns:
        str: The text ('' for None).
    """
    return checked(check_prompt_text, (text or '').strip(), field)


class StageProgress:
    """One line per sampling step of a cascade: the stage, its step and
    the seconds left in it, from the stage's own pace (an upsampler step
    costs more than a base step, so one pace for all would mislead).

    Args:
        stages (list[tuple[str, int]]): Each stage's name and steps, in
            sampling order.
        clock (callable): Seconds now (tests pass their own).
    """

    def __init__(self, stages, clock=time.monotonic):
        self.stages, self.clock = stages, clock
        self.stage_start = self.last = clock()

    def locate(self, done):
        """The stage (its index in ``stages``) and its step after ``done``
        steps of all stages together."""
        index, step = 0, done
        while index + 1 < len(self.stages) and step > self.stages[index][1]:
            step -= self.stages[index][1]
            index += 1
        return index, step

    def __call__(self, done):
        """The line after ``done`` steps of all stages together."""
        now = self.clock()
        index, step = self.locate(done)
        name, steps = self.stages[index]
        if step == 1:
            self.stage_start = self.last
        self.last = now
        left = (now - self.stage_start) / step * (steps - step)
        line = f'{name}: step {step} of {steps}, about {left:.1f} s left'
        later = ', '.join(f'{n} ({s} steps)' for n, s in
                          self.stages[index + 1:])
        return f'{line}; then {later}' if later else line
