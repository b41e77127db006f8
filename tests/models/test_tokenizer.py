"""GlideTokenizer: exact GLIDE tokenization, no download."""
import pytest
import torch

from projects.glide.models.tokenizer import END_TOKEN, GlideTokenizer
from tests.conftest import read_json


@pytest.fixture(scope='module')
def tokenizer():
    return GlideTokenizer()


@pytest.fixture(scope='module')
def cases():
    return read_json('tokenizer_cases.json.gz')


def test_agrees_with_reference_on_every_case(tokenizer, cases):
    assert cases['end_token'] == END_TOKEN == tokenizer.end_token
    assert cases['n_vocab'] == tokenizer.n_vocab
    wrong = [c['prompt'] for c in cases['cases']
             if tokenizer.encode(c['prompt']) != c['tokens']]
    assert not wrong, f'{len(wrong)} of {len(cases["cases"])} differ: {wrong[:5]}'


def test_padded_tokens_and_mask_agree_with_reference(tokenizer, cases):
    prompts = [c['prompt'] for c in cases['cases']]
    with pytest.warns(UserWarning) if any(
            len(c['tokens']) > 128 for c in cases['cases']) else _no_warning():
        tokens, mask = tokenizer(prompts)
    assert tokens.shape == mask.shape == (len(prompts), 128)
    assert tokens.dtype == torch.long and mask.dtype == torch.bool
    assert tokens.tolist() == [c['padded_128'] for c in cases['cases']]
    assert mask.tolist() == [c['mask_128'] for c in cases['cases']]


def test_lower_cases_and_keeps_punctuation(tokenizer):
    assert tokenizer.encode('A Corgi!?') == tokenizer.encode('a corgi!?')
    assert tokenizer.decode(tokenizer.encode('a, b; c... "d"')) == \
        'a, b; c... "d"'


def test_empty_prompt_is_all_padding(tokenizer):
    tokens, mask = tokenizer('')
    assert (tokens == END_TOKEN).all() and not mask.any()


def test_truncation_warns_and_keeps_128_tokens(tokenizer):
    long = ' '.join(['corgi'] * 200)
    with pytest.warns(UserWarning, match=r'truncated from \d+ to 128'):
        tokens, mask = tokenizer([long, 'short'])
    assert mask[0].all() and mask[1].sum() == 1


@pytest.mark.parametrize('bad', [None, 3, ['ok', 5]])
def test_rejects_non_strings(tokenizer, bad):
    with pytest.raises(TypeError, match='prompt'):
        tokenizer(bad) if isinstance(bad, list) else tokenizer.encode(bad)


class _no_warning:

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
