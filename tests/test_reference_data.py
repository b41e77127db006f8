"""The golden data in tests/data: present, and shaped as the tool writes it.

``tests/fixtures/make_reference_fixtures.py`` writes these files from
OpenAI's reference; this checks what is stored (not a re-run of the
reference): every file is there, each tensor has the name, shape and dtype
the tool writes, the JSON files have their fields, and the weights are drawn
as documented.
"""
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from projects.glide.models import openai_to_mmagic
from projects.glide.models.checkpoint import (expected_shapes,
                                              unet_config_from_openai)
from tests.conftest import DATA, read_json, read_key_list, reference_path
from tests.reference import reference_state_dict
from tests.fixtures.make_reference_fixtures import (
    CASES, DATA_README, draw_weights, expected_tensors)

CASE_FILES = [f'{case}_tiny.safetensors' for case in CASES]
KEY_LISTS = [
    f'keys_openai_{name}.txt.gz'
    for name in ('base', 'upsample', 'base_inpaint', 'upsample_inpaint',
                 'clip_text_enc', 'clip_image_enc')
] + [f'keys_mmagic_glide_laion-{name}.txt.gz' for name in ('64x64', '64-256')]
FILES = ['README.md', 'manifest.json', 'clip_manifest.json',
         'clip_tiny.safetensors', 'tokenizer_prompts.json',
         'tokenizer_cases.json.gz', 'clip_tokenizer_prompts.json',
         'clip_tokenizer_cases.json.gz'] + CASE_FILES + KEY_LISTS


def test_every_file_is_there_and_nothing_else():
    assert sorted(p.name for p in DATA.iterdir()) == sorted(FILES)
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 4 * 2**20


def test_a_missing_file_is_an_error_not_a_skip():
    with pytest.raises(FileNotFoundError, match='make_reference_fixtures'):
        reference_path('no_such_file.safetensors')


def test_readme_is_the_tools():
    assert reference_path('README.md').read_text() == DATA_README


@pytest.mark.parametrize('name', CASE_FILES + ['clip_tiny.safetensors'])
def test_tensors_have_the_written_names_shapes_and_dtypes(manifest, name):
    expected = expected_tensors(manifest, read_json('clip_manifest.json'))
    stored = load_file(str(reference_path(name)))
    assert {k: (tuple(v.shape), str(v.dtype).replace('torch.', ''))
            for k, v in stored.items()} == expected[name]
    for key, value in stored.items():
        if value.is_floating_point():
            assert torch.isfinite(value).all(), key


@pytest.mark.parametrize('case', list(CASES))
def test_manifest_entries(manifest, case):
    entry = manifest['cases'][case]
    assert set(entry) >= {'options', 'prompts', 'forward', 'inputs', 'sample',
                          'weights'}
    assert entry['prompts'] == ['an oil painting of a corgi', '']
    assert entry['options']['text_ctx'] == 128
    assert entry['options']['use_fp16'] is False
    weights = entry['weights']
    assert weights['std'] == 0.05 and isinstance(weights['seed'], int)
    # The weights' keys are the reference's, and convert to our network's.
    ours = expected_shapes(unet_config_from_openai(entry['options']))
    assert {k: tuple(v) for k, v in openai_to_mmagic(
        weights['shapes']).items()} == ours


def test_inputs_are_as_documented(manifest):
    for case in CASES:
        data = load_file(str(reference_path(f'{case}_tiny.safetensors')))
        assert data['forward.timesteps'].tolist() == \
            manifest['cases'][case]['inputs']['timesteps']
        assert set(data['forward.mask'].unique().tolist()) <= {0, 1}
        if 'forward.low_res' in data:  # 8-bit quantised
            levels = (data['forward.low_res'] + 1) * 127.5
            assert (levels - levels.round()).abs().max() < 1e-3
        if 'forward.inpaint_mask' in data:
            assert set(data['forward.inpaint_mask'].unique().tolist()) == \
                {0.0, 1.0}


def test_clip_manifest():
    meta = read_json('clip_manifest.json')
    assert set(meta) >= {'config', 'prompts', 'inputs', 'weights'}
    shapes = meta['weights']['shapes']
    assert {k.split('.')[0] for k in shapes} == {'text_encoder',
                                                 'image_encoder'}
    assert shapes['text_encoder.blocks.input.w_voc'] == [
        meta['config']['n_vocab'], meta['config']['n_embd']]


@pytest.mark.parametrize('cases,prompts,ctx', [
    ('tokenizer_cases.json.gz', 'tokenizer_prompts.json', 128),
    ('clip_tokenizer_cases.json.gz', 'clip_tokenizer_prompts.json', 77),
])
def test_tokenizer_cases(cases, prompts, ctx):
    stored = read_json(cases)
    assert [c['prompt'] for c in stored['cases']] == read_json(prompts)
    for case in stored['cases']:
        assert all(isinstance(t, int) for t in case['tokens'])
        if ctx == 128:
            assert set(case) == {'prompt', 'tokens', 'padded_128', 'mask_128'}
            assert len(case['padded_128']) == len(case['mask_128']) == 128
            assert sum(case['mask_128']) == min(len(case['tokens']), 128)
        else:
            assert set(case) == {'prompt', 'tokens', 'padded_77', 'len_77'}
            assert len(case['padded_77']) == 77
            assert case['len_77'] == min(len(case['tokens']) + 2, 77)
    if ctx == 128:
        assert (stored['n_vocab'], stored['end_token']) == (50257, 50256)


@pytest.mark.parametrize('name', KEY_LISTS)
def test_key_lists_parse(name):
    keys = read_key_list(name)
    assert len(keys) > 50
    assert all(isinstance(s, tuple) and s for s in keys.values())


def test_weights_are_drawn_as_documented():
    """Sorted keys, one numpy PCG64 stream, std 0.05, 1-D gains around 1."""
    shapes = {'b.weight': [2], 'a.bias': [3], 'c.g': [2], 'a.weight': [2, 1]}
    drawn = draw_weights(shapes, seed=7)
    assert list(drawn) == ['a.bias', 'a.weight', 'b.weight', 'c.g']
    z = np.random.default_rng(7).standard_normal(9) * 0.05
    expected = [z[0:3], z[3:5].reshape(2, 1), 1 + z[5:7], 1 + z[7:9]]
    for value, want in zip(drawn.values(), expected):
        assert value.dtype == torch.float32
        assert torch.equal(value, torch.from_numpy(want.astype(np.float32)))


def test_numpy_stream_is_the_one_the_data_was_made_with():
    """The weights depend on numpy's PCG64 normal stream, which numpy keeps
    stable; if it ever changed, the golden data would no longer match."""
    np.testing.assert_allclose(
        np.random.default_rng(0).standard_normal(3),
        [0.1257302210933933, -0.1321048632913019, 0.6404226504432821],
        rtol=0, atol=1e-15)


def test_drawn_weights_are_fresh_copies():
    a, b = reference_state_dict('base'), reference_state_dict('base')
    key = 'input_blocks.0.0.weight'
    a[key].zero_()
    assert b[key].abs().sum() > 0 and reference_state_dict('base')[key].any()
