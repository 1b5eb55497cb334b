"""Long-window perplexity through the Python API: windows, rope scaling, refusals."""

import math

import pytest
import torch

import pimpmyllama as pml
from pimpmyllama.errors import InvalidInputError
from rope_reference import hf_token_losses

TEXT = " ".join(["Yesterday evening I ate ravioli with my friends at the post office square."] * 30)


def test_windows_do_not_overlap_and_each_starts_from_an_empty_cache(pml_home, stored_tiny, tiny_model, tmp_path):
    from pimpmyllama.prompting.tokenizer import Tokenizer

    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    ids = Tokenizer(tiny_model).encode(TEXT)
    n = len(ids) // 2  # two windows
    scaling = {"type": "linear", "factor": 2.0}
    result = pml.long_perplexity("tiny", [text], n, rope_scaling=scaling, precision="fp32")
    losses = torch.cat([hf_token_losses(tiny_model, scaling, ids[:n]), hf_token_losses(tiny_model, scaling, ids[n : 2 * n])])
    assert (result.windows, result.tokens, result.num_ctx) == (2, 2 * (n - 1), n)
    assert result.perplexity == pytest.approx(math.exp(float(losses.mean())), rel=1e-4)


def test_refusals_come_before_loading(pml_home, stored_tiny, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    with pytest.raises(InvalidInputError, match="'factor': Input should be greater than or equal to 1"):
        pml.long_perplexity("tiny", [text], 256, rope_scaling={"type": "yarn", "factor": 0.9})
    with pytest.raises(InvalidInputError, match="fewer than one window of num_ctx 1024"):
        pml.long_perplexity("tiny", [text], 1024, rope_scaling={"type": "yarn", "factor": 2})
