"""GLIDE's text tokenizer: GPT-2 byte-level BPE on the lower-cased prompt.

The BPE ranks come from the GPT-2 ranks file that ships inside the
``openai-whisper`` package (``whisper/assets/gpt2.tiktoken``), so nothing is
downloaded at run time; ``tiktoken`` does the (Rust-fast) merging. With the
GPT-2 split pattern and ``<|endoftext|>`` = 50256 this reproduces the reference
tokenizer of ``glide-text2im`` exactly (see ``tests/models/test_tokenizer.py``).
"""
import importlib.util
import os
import warnings
from functools import lru_cache
from typing import List, Optional, Sequence, Tuple, Union

import torch

# The GPT-2 pre-tokenisation pattern, as in the reference tokenizer.
GPT2_PATTERN = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|"""
                r""" ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
END_TOKEN = 50256
N_VOCAB = 50257


def _default_ranks_path() -> str:
    spec = importlib.util.find_spec('whisper')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            'GLIDE\'s tokenizer needs the GPT-2 ranks file shipped in the '
            '`openai-whisper` package; install the project with '
            '`make setup` (or `pip install --no-deps openai-whisper`), '
            'or pass `ranks_path=` to GlideTokenizer.')
    return os.path.join(spec.submodule_search_locations[0], 'assets',
                        'gpt2.tiktoken')


@lru_cache(maxsize=4)
def _load_encoding(ranks_path: str):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    if not os.path.isfile(ranks_path):
        raise FileNotFoundError(
            f'GPT-2 BPE ranks file not found: {ranks_path!r}')
    ranks = load_tiktoken_bpe(ranks_path)
    return tiktoken.Encoding(
        name='glide_gpt2',
        pat_str=GPT2_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={'<|endoftext|>': END_TOKEN})


class GlideTokenizer:
    """Tokenizes prompts exactly as GLIDE's reference does.

    Args:
        text_ctx (int): Context length the text transformer expects; prompts
            are truncated to it and padded with ``end_token``. Defaults to 128.
        ranks_path (str, optional): Path of a GPT-2 ``.tiktoken`` ranks file.
            Defaults to the copy shipped in ``openai-whisper``.
    """

    n_vocab = N_VOCAB
    end_token = END_TOKEN

    def __init__(self, text_ctx: int = 128, ranks_path: Optional[str] = None):
        if text_ctx <= 0:
            raise ValueError(f'text_ctx must be positive, got {text_ctx}')
        self.text_ctx = text_ctx
        self._encoding = _load_encoding(ranks_path or _default_ranks_path())

    def __deepcopy__(self, memo):
        # Stateless (the encoding is shared and read-only): EMA model copies
        # share it.
        return self

    def encode(self, text: str) -> List[int]:
        """BPE tokens of one prompt (lower-cased first), unpadded."""
        if not isinstance(text, str):
            raise TypeError(f'prompt must be a str, got {type(text).__name__}')
        # Special-token text is ordinary text in a prompt, as in the reference.
        return self._encoding.encode_ordinary(text.lower())

    def decode(self, tokens: Sequence[int]) -> str:
        """Text of a token list; padding tokens are dropped."""
        return self._encoding.decode([t for t in tokens if t != END_TOKEN])

    def padded_tokens_and_mask(self, tokens: Sequence[int]
                               ) -> Tuple[List[int], List[bool]]:
        """Truncate to ``text_ctx`` and pad with ``end_token``; True = real."""
        tokens = list(tokens)[:self.text_ctx]
        padding = self.text_ctx - len(tokens)
        return (tokens + [END_TOKEN] * padding,
                [True] * len(tokens) + [False] * padding)

    def __call__(self, prompts: Union[str, Sequence[str]],
                 device: Union[str, torch.device] = 'cpu'
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Tokenize one prompt or a list of prompts.

        Args:
            prompts (str | Sequence[str]): The prompt(s). The empty string is
                the unconditional prompt (all padding).
            device: Device of the returned tensors.

        Returns:
            tuple[Tensor, Tensor]: ``tokens`` (B, text_ctx) int64 and ``mask``
            (B, text_ctx) bool, True where a token is real.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        prompts = list(prompts)
        encoded = self._encoding.encode_ordinary_batch(
            [self._check(p).lower() for p in prompts])
        rows, masks = [], []
        for prompt, toks in zip(prompts, encoded):
            if len(toks) > self.text_ctx:
                warnings.warn(
                    f'prompt truncated from {len(toks)} to {self.text_ctx} '
                    f'tokens: {prompt[:60]!r}...',
                    stacklevel=2)
            row, mask = self.padded_tokens_and_mask(toks)
            rows.append(row)
            masks.append(mask)
        return (torch.tensor(rows, dtype=torch.long, device=device),
                torch.tensor(masks, dtype=torch.bool, device=device))

    @staticmethod
    def _check(prompt) -> str:
        if not isinstance(prompt, str):
            raise TypeError('prompt must be a str or a list of str, got an '
                            f'element of type {type(prompt).__name__}')
        return prompt
