"""The memory a KV cache of a given length takes, known before any weight is read,
and the refusal of a length that will not fit."""

from dataclasses import dataclass

from pimpmyllama.errors import InvalidInputError

MIB, GIB = 1 << 20, 1 << 30


@dataclass(frozen=True)
class KVCacheSize:
    """Keys and values (fp32, as llama.KVCache holds them at every precision) of
    `layers` × `kv_heads` × `head_dim` for `num_ctx` positions."""

    num_ctx: int
    layers: int
    kv_heads: int
    head_dim: int
    bytes_per_value: int = 4

    @property
    def bytes(self) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * self.bytes_per_value * self.num_ctx

    def describe(self) -> str:
        return (f"KV cache for num_ctx {self.num_ctx}: {self.bytes / MIB:,.1f} MiB (keys and values × {self.layers} "
                f"layers × {self.kv_heads} kv heads × head_dim {self.head_dim} × {self.bytes_per_value} bytes)")


def kv_cache_size(config: dict, num_ctx: int) -> KVCacheSize:
    """The cache of a model with this config.json at `num_ctx` positions."""
    heads = config["num_attention_heads"]
    return KVCacheSize(num_ctx, config["num_hidden_layers"], config.get("num_key_value_heads") or heads,
                       config.get("head_dim") or config["hidden_size"] // heads)


def available_memory() -> int:
    """Bytes the system can give without swapping (psutil's `available`)."""
    import psutil

    return psutil.virtual_memory().available


def device_memory(device) -> int | None:
    """Bytes free on a GPU (torch.device), None on the CPU (then: available_memory)."""
    if device.type != "cuda":
        return None
    import torch

    return torch.cuda.mem_get_info(device)[0]


def check_kv_fits(size: KVCacheSize, available: int | None = None) -> None:
    """Refuse (one line, with the numbers) a cache larger than the memory available."""
    available = available_memory() if available is None else available
    if size.bytes > available:
        raise InvalidInputError(f"{size.describe()} does not fit: {available / GIB:.2f} GiB of memory is available; "
                                "lower num_ctx")
