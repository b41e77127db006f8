"""projects/glide/checks.py: numbers as Python users pass them."""
import numpy as np
import pytest
import torch

from projects.glide.checks import check_float, check_int, describe


@pytest.mark.parametrize('value', [
    3, np.int64(3), np.uint8(3), torch.tensor(3),
    torch.tensor(3, dtype=torch.int16)])
def test_int_like_values_are_ints(value):
    out = check_int(value, 'steps', 1, 1000)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize('value', [3, 3.5, np.float32(3.5), np.float64(3.5),
                                   np.int32(3), torch.tensor(3.5),
                                   torch.tensor(3.5, dtype=torch.float16)])
def test_real_values_are_floats(value):
    out = check_float(value, 'scale', 0)
    assert out == float(value) and type(out) is float


@pytest.mark.parametrize('value', [True, 2.0, '3', None, [3], np.zeros(2),
                                   torch.ones(1), torch.tensor(True),
                                   torch.tensor(1 + 2j), 0, 1001])
def test_other_values_name_the_argument_and_range(value):
    with pytest.raises(ValueError,
                       match=r'steps must be an int in \[1, 1000\], got '):
        check_int(value, 'steps', 1, 1000)


def test_float_ranges_and_special_values():
    for value in (float('nan'), float('inf'), -1, np.float32('nan')):
        with pytest.raises(ValueError, match='scale must be a finite number '
                           '>= 0'):
            check_float(value, 'scale', 0)
    with pytest.raises(ValueError, match=r'temp must be a number in \(0, 1\]'):
        check_float(0, 'temp', 0, 1, low_open=True)
    assert check_float(1, 'temp', 0, 1, low_open=True) == 1.0


def test_meta_tensors_have_no_value():
    with pytest.raises(ValueError, match='meta device'):
        check_float(torch.tensor(1.0, device='meta'), 'scale')


def test_describe_is_short():
    assert describe(np.zeros((100, 100))) == \
        'numpy.ndarray of shape (100, 100)'
    assert describe(torch.zeros(2, 3)) == 'torch.Tensor of shape (2, 3) on cpu'
    long = describe('x' * 500)
    assert len(long) < 80 and long.endswith("... (str)")
    assert describe(np.float32(2.5)) == '2.5 (float32)'
