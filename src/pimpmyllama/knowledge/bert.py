"""A lean BERT sentence encoder: the forward of a sentence-transformers folder made of
[Transformer (a BERT), Pooling (mean), Normalize] — the bundled all-MiniLM-L6-v2's
form — in a few PyTorch operations, read straight from its safetensors.

It gives sentence-transformers' vectors (same tokenizer, truncation, mean pooling and
L2 norm; equal to float32 rounding, tests/knowledge/test_bert.py) without importing
sentence-transformers and transformers, which take ~6 s to import on a 2-core machine
— most of a one-shot `pml kb search`. Other folders return None and go to
sentence-transformers.
"""

import json
from pathlib import Path

import numpy as np

_FORM = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling",
         "sentence_transformers.models.Normalize"]


def _read(path: Path) -> dict | list | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def lean_bert(folder: Path, device=None) -> "LeanBert | None":
    """The lean encoder for `folder` on `device` (a torch.device; default the CPU), or None
    when it is not of the form it computes."""
    modules = _read(folder / "modules.json")
    config = _read(folder / "config.json")
    if not isinstance(modules, list) or [m.get("type") for m in modules] != _FORM or not isinstance(config, dict):
        return None
    pooling = _read(folder / modules[1].get("path", "") / "config.json") if modules[1].get("path") else None
    st_config = _read(folder / "sentence_bert_config.json") or {}
    mean_only = isinstance(pooling, dict) and pooling.get("pooling_mode_mean_tokens") and not any(
        v for k, v in pooling.items() if k.startswith("pooling_mode_") and k != "pooling_mode_mean_tokens")
    if not (mean_only and config.get("model_type") == "bert" and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and modules[0].get("path", "") == "" and not st_config.get("do_lower_case")
            and (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()):
        return None
    return LeanBert(folder, config, int(st_config.get("max_seq_length", 256)), device)


class LeanBert:
    """What Embedder needs of a SentenceTransformer: encode, max_seq_length, the dimension."""

    def __init__(self, folder: Path, config: dict, max_seq_length: int, device=None):
        import torch
        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        self.max_seq_length = min(max_seq_length, int(config["max_position_embeddings"]))
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.device = device or torch.device("cpu")
        self.weights = {k.removeprefix("bert."): v.float().to(self.device)
                        for k, v in load_file(folder / "model.safetensors").items()}
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(self.max_seq_length)
        self.tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))
        self._torch = torch

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.weights["embeddings.word_embeddings.weight"].shape[1])

    def encode(self, texts: list[str], batch_size: int = 32, normalize_embeddings: bool = True,
               convert_to_numpy: bool = True) -> np.ndarray:
        torch = self._torch
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                # sentence-transformers strips each text before tokenizing
                encoded = self.tokenizer.encode_batch([t.strip() for t in texts[start:start + batch_size]])
                ids = torch.tensor([e.ids for e in encoded], device=self.device)
                types = torch.tensor([e.type_ids for e in encoded], device=self.device)
                mask = torch.tensor([e.attention_mask for e in encoded], dtype=torch.float32, device=self.device)
                vectors = self._pooled(ids, types, mask)
                if normalize_embeddings:
                    vectors = torch.nn.functional.normalize(vectors, p=2, dim=1)
                out.append(vectors.cpu())
        result = torch.cat(out) if out else torch.zeros((0, self.get_sentence_embedding_dimension()))
        return result.numpy() if convert_to_numpy else result

    def _pooled(self, ids, types, mask):
        F, w, eps = self._torch.nn.functional, self.weights, self.eps
        batch, length = ids.shape
        hidden = w["embeddings.word_embeddings.weight"].shape[1]

        def norm(x, name):
            return F.layer_norm(x, (hidden,), w[f"{name}.weight"], w[f"{name}.bias"], eps)

        def dense(x, name):
            return F.linear(x, w[f"{name}.weight"], w[f"{name}.bias"])

        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:length]
             + w["embeddings.token_type_embeddings.weight"][types])
        x = norm(x, "embeddings.LayerNorm")
        keep = mask.bool()[:, None, None, :]  # padding is never attended to
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def heads(t):
                return t.view(batch, length, self.heads, -1).transpose(1, 2)

            q, k, v = (heads(dense(x, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(batch, length, -1)
            x = norm(dense(context, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
            inner = F.gelu(dense(x, f"{p}.intermediate.dense"))
            x = norm(dense(inner, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
        # mean over the real tokens, as sentence-transformers' Pooling
        return (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1e-9)
