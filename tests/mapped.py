"""Which file a tensor's memory is mapped from, as this process's /proc/self/maps says."""

import torch


def mapped_file(tensor: torch.Tensor) -> str | None:
    """The file this process maps at the tensor's memory, if any."""
    address = tensor.untyped_storage().data_ptr()
    for line in open("/proc/self/maps"):
        fields = line.split()
        begin, end = (int(x, 16) for x in fields[0].split("-"))
        if begin <= address < end:
            return fields[5] if len(fields) > 5 and fields[5].startswith("/") else None
    return None
