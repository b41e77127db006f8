"""Reading checkpoints safely and loading them strictly."""
import os
import pickle

import pytest
import torch

from mmagic.apis import init_model
from projects.glide.models.checkpoint import (check_state_dict,
                                              mmagic_to_openai,
                                              openai_to_mmagic,
                                              read_checkpoint,
                                              read_state_dict,
                                              save_state_dict)
from tests.conftest import TEST_CONFIGS

TINY = str(TEST_CONFIGS / 'glide_tiny_16-32.py')


class _Exploit:
    """A pickle that runs a shell command when loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        pickle.dump({'state_dict': {'w': torch.zeros(1)},
                     'x': _Exploit(marker)}, f)
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'x': _Exploit(marker)},
               path)
    with pytest.raises(pickle.UnpicklingError, match='refused to read'):
        read_checkpoint(str(path))
    # mmagic's init_model goes through the same reader.
    with pytest.raises(pickle.UnpicklingError, match='refused to read'):
        init_model(TINY, str(path), device='cpu')
    assert not marker.exists()


def test_mmengine_checkpoints_with_plain_data_are_read(tmp_path):
    import numpy as np
    from mmengine.logging import HistoryBuffer
    path = tmp_path / 'runner.pth'
    buf = HistoryBuffer()
    buf.update(1.5)
    torch.save({'meta': {'seed': np.int64(3), 'arr': np.zeros(2)},
                'message_hub': {'log_scalars': {'loss': buf}},
                'state_dict': {'unet.w': torch.ones(2)}}, path)
    ckpt = read_checkpoint(str(path))
    assert ckpt['meta']['seed'] == 3
    assert list(read_state_dict(str(path), prefix='unet.')) == ['w']


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        read_checkpoint(str(tmp_path / 'nope.pth'))


@pytest.fixture(scope='module')
def tiny_state():
    model = init_model(TINY, None, device='cpu')
    return model.state_dict()


@pytest.mark.parametrize('ext', ['pth', 'safetensors'])
def test_init_model_is_strict(tmp_path, tiny_state, ext):
    broken = dict(tiny_state)
    broken.pop('unet.out.conv.bias')
    broken['unet.extra'] = torch.zeros(1)
    broken['unet_up.out.conv.weight'] = torch.zeros(1, 2, 3, 3)
    path = str(tmp_path / f'broken.{ext}')
    save_state_dict(broken, path)
    with pytest.raises(KeyError) as err:
        init_model(TINY, path, device='cpu')
    text = str(err.value)
    assert 'missing keys (1): unet.out.conv.bias' in text
    assert 'unexpected keys (1): unet.extra' in text
    assert 'unet_up.out.conv.weight: (1, 2, 3, 3) != (6, 32, 3, 3)' in text


def test_openai_checkpoint_given_to_init_model_gets_a_hint(tmp_path,
                                                           tiny_state):
    openai = mmagic_to_openai(tiny_state, prefix='unet.')
    path = str(tmp_path / 'base.pt')
    torch.save(openai, path)
    with pytest.raises(KeyError) as err:
        init_model(TINY, path, device='cpu')
    text = str(err.value)
    first = text.splitlines()[0]  # the hint comes first, before the keys
    assert 'OpenAI-format GLIDE checkpoint' in first
    assert 'tools/convert_glide_checkpoint.py --base base.pt' in first
    assert '\\n' not in text and 'missing keys' in text  # printable


@pytest.mark.parametrize('content,match', [
    (b'hello world\n', r"is not a checkpoint: .* starts with b'hello"),
    (b'', 'is not a checkpoint'),
    (b'PK\x03\x04broken zip', 'truncated or corrupt'),
])
def test_a_file_that_is_no_checkpoint_is_named(tmp_path, content, match):
    path = tmp_path / 'weights.pth'
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        read_checkpoint(str(path))
    with pytest.raises(ValueError, match=match):
        init_model(TINY, str(path), device='cpu')


def test_truncated_checkpoint_and_fake_safetensors(tmp_path, tiny_state):
    path = tmp_path / 'cut.pth'
    save_state_dict(tiny_state, str(path))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"cut.pth' as a torch checkpoint"):
        read_checkpoint(str(path))
    fake = tmp_path / 'w.safetensors'
    fake.write_text('not safetensors')
    with pytest.raises(ValueError, match=r"w.safetensors' as .safetensors"):
        read_checkpoint(str(fake))


def test_key_mapping_round_trip(tiny_state):
    base = {k: v for k, v in tiny_state.items() if k.startswith('unet.')}
    openai = mmagic_to_openai(base, prefix='unet.')
    assert 'input_blocks.1.0.in_layers.0.weight' in openai
    assert 'out.2.weight' in openai and 'time_embed.0.weight' in openai
    assert openai_to_mmagic(openai, prefix='unet.').keys() == base.keys()


def test_check_state_dict_lists_every_problem():
    with pytest.raises(KeyError, match=r'missing keys \(2\): a, b') as err:
        check_state_dict({}, {'a': (1, ), 'b': (2, )}, hint='Try this.')
    assert str(err.value).splitlines() == [
        'checkpoint does not match the model. Try this.',
        '  missing keys (2): a, b']


class _GetattrExploit:
    """A pickle that reaches for a private attribute through getattr."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


def test_getattr_is_limited_to_log_buffer_methods(tmp_path):
    path = tmp_path / 'sneaky.pth'
    torch.save({'x': _GetattrExploit()}, path)
    with pytest.raises(pickle.UnpicklingError, match="'__init__'"):
        read_checkpoint(str(path))
