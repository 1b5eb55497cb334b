"""Fallback backend: any causal LM transformers can load, for architectures the
lean forward does not cover. Same interface as `LlamaModel`."""

import inspect
from pathlib import Path

import torch

from pimpmyllama.quiet import quiet_transformers


class _HFCache:
    def __init__(self, max_len: int):
        self.max_len = max_len
        self.past = None
        self.ids: list[int] = []


class HFBackend:
    def __init__(self, folder: Path, dtype=torch.float32, adapter=None, rope: dict | None = None,
                 device: torch.device | None = None):
        """`rope`: rope parameters to run with instead of the stored ones (rope.scaled_config);
        transformers recomputes a `dynamic` base as the sequence grows. `device`: where the
        model and its inputs go (default the CPU); logits come back to the CPU."""
        from transformers import AutoConfig, AutoModelForCausalLM

        quiet_transformers()
        config = AutoConfig.from_pretrained(str(folder))
        if rope is not None:
            config.rope_parameters = {k: v for k, v in rope.items() if k != "context_length"}
        self.model = AutoModelForCausalLM.from_pretrained(str(folder), config=config, dtype=dtype)
        self.model.eval()
        self.dtype = dtype
        if adapter is not None:
            adapter.apply_to_module(self.model)
        self.device = device or torch.device("cpu")
        if self.device.type != "cpu":
            self.model.to(self.device)
        # transformers is renaming `past_key_values` to `cache`; use whichever it takes.
        accepted = inspect.signature(self.model.forward).parameters
        self._cache_arg = "cache" if "cache" in accepted else "past_key_values"

    def new_cache(self, max_len: int) -> _HFCache:
        return _HFCache(max_len)

    @torch.inference_mode()
    def forward(self, ids: list[int], cache: _HFCache, pos0: int, all_logits: bool = False) -> torch.Tensor:
        from transformers import DynamicCache

        held = cache.past.get_seq_length() if cache.past is not None else 0
        if cache.past is None or pos0 == 0:
            cache.past = DynamicCache()
        elif held > pos0:
            cache.past.crop(pos0 - held)  # a negative count drops that many positions
        positions = torch.arange(pos0, pos0 + len(ids), device=self.device).unsqueeze(0)
        out = self.model(
            input_ids=torch.tensor([ids], device=self.device), position_ids=positions, use_cache=True,
            **{self._cache_arg: cache.past}
        )
        logits = out.logits[0].float().cpu()
        return logits if all_logits else logits[-1]
