"""Architectures outside the lean forward run through transformers, same interface."""

import torch
from transformers import AutoModelForCausalLM, GPT2Config

from pimpmyllama.generation.loading import load_backend
from tiny import write_tokenizer


def test_gpt2_runs_through_the_fallback_backend(tmp_path):
    write_tokenizer(tmp_path)
    config = GPT2Config(vocab_size=384, n_positions=64, n_embd=32, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=2)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(str(tmp_path))
    backend = load_backend(tmp_path)
    assert type(backend).__name__ == "HFBackend"
    ids = [3, 9, 27, 81, 243]
    full = backend.forward(ids, backend.new_cache(64), 0, all_logits=True)
    cache = backend.new_cache(64)
    backend.forward(ids[:3], cache, 0)
    # A second call continuing from position 3 reuses the cached keys and values.
    tail = backend.forward(ids[3:], cache, 3, all_logits=True)
    torch.testing.assert_close(tail, full[3:], rtol=1e-4, atol=1e-4)
    # Going back to position 2 crops the cache instead of appending after it.
    again = backend.forward(ids[2:], cache, 2, all_logits=True)
    torch.testing.assert_close(again, full[2:], rtol=1e-4, atol=1e-4)
