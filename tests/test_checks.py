"""projects/glide/checks.py: numbers as Python users pass them."""
import numpy as np
import pytest
import torch

from projects.glide.checks import (check_float, check_int, check_prompts,
                                   check_scale, check_seed, check_steps,
                                   describe)


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


def test_steps_accept_ints_and_respacing_strings_and_name_the_argument():
    assert check_steps(None, '--steps') is None
    assert check_steps(np.int64(25), '--steps') == 25
    assert check_steps('fast27', '--steps') == 'fast27'
    for bad in (0, 1001, 2.5, 'ddimx'):
        with pytest.raises(ValueError,
                           match=r"--steps must be an int in \[1, 1000\] or a "
                           'respacing string'):
            check_steps(bad, '--steps')
    with pytest.raises(ValueError, match=r'in \[1, 50\]'):
        check_steps(51, 'steps', num_train_timesteps=50)


def test_seed_and_scale_ranges():
    assert check_seed(np.uint64(2**64 - 1)) == 2**64 - 1
    with pytest.raises(ValueError, match=r'seed must be an int in \[0, '
                       r'2\*\*64 - 1\], got -5'):
        check_seed(-5)
    with pytest.raises(TypeError, match='seed must be an int'):
        check_seed('5')
    assert check_scale(0, 'Guidance') == 0.0
    with pytest.raises(ValueError, match='Guidance must be a finite number '
                       '>= 0, got -1'):
        check_scale(-1, 'Guidance')


def test_prompts_are_one_per_sample():
    assert check_prompts('a', 3) == ['a', 'a', 'a']
    assert check_prompts(['a'], 2) == ['a', 'a']
    assert check_prompts(('a', 'b'), None) == ['a', 'b']
    with pytest.raises(ValueError, match='prompt has 2 prompts but '
                       'batch_size is 3'):
        check_prompts(['a', 'b'], 3)
    with pytest.raises(TypeError, match='negative_prompt must contain only '
                       'str'):
        check_prompts(['a', 1], None, 'negative_prompt')
    with pytest.raises(ValueError, match='prompt is required'):
        check_prompts(None, 1)
