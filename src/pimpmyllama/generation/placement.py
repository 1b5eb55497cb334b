"""What runs where: the precision a device runs a model at, and moving a built model's
tensors onto it.

On the CPU nothing changes: the precision asked for (or the model's default), our
int4/int8 kernels where they built. Our kernels are CPU code, so on any other device
(CUDA) the engine runs PyTorch's own operations: dense weights, bf16 unless fp32 is
asked for (`DEVICE_PRECISION`), and SDPA for attention. Asking for int8 or int4 there
is refused in one line rather than quietly run at another precision.
"""

import torch

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.generation.layer import Block
from pimpmyllama.generation.precision import PRECISIONS, Precision, check_precision
from pimpmyllama.generation.products import Dense, Linear

DEVICE_PRECISION = "bf16"  # off the CPU, unless told


def precision_on(device: torch.device, precision: str | None, default: str) -> Precision:
    """The precision to run at on `device`: `precision` if given, else `default` on the
    CPU and DEVICE_PRECISION elsewhere; weight-quantized precisions only on the CPU."""
    if device.type == "cpu":
        return check_precision(precision or default)
    if precision is None:
        return PRECISIONS[DEVICE_PRECISION]
    chosen = check_precision(precision)
    if chosen.weight_bits:
        raise InvalidInputError(f"precision {chosen.name} runs on the CPU only (our int{chosen.weight_bits} kernels); "
                                f"on {device.type} use bf16 or fp32, or --device cpu")
    return chosen


def place_linear(linear: Linear, device: torch.device) -> Linear:
    """`linear` with its weight, bias and LoRA factors on `device` (moved in place);
    only dense products move (quantized ones are CPU kernels' formats)."""
    product = linear.product
    if not isinstance(product, Dense):
        raise ValueError(f"a {type(product).__name__} product stays on the CPU")
    product.weight = product.weight.to(device)
    linear.bias = None if linear.bias is None else linear.bias.to(device)
    linear.low_rank = None if linear.low_rank is None else tuple(t.to(device) for t in linear.low_rank)
    return linear


def place_block(block: Block, device: torch.device) -> Block:
    """Every tensor of a layer on `device` (moved in place)."""
    block.attn_norm, block.mlp_norm = block.attn_norm.to(device), block.mlp_norm.to(device)
    for linear in (block.qkv, block.out, block.gate_up, block.down):
        place_linear(linear, device)
    return block
