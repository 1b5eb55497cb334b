"""Prepared weights: a model's products as a precision holds them (quantized and
packed for the kernels, products.py), kept on disk so that the next load of the same
model at the same precision reads them instead of quantizing every weight again.

One safetensors file per model folder, precision and kernel choice, under
`$PML_HOME/cache/prepared/`; its name carries a key of everything the products depend
on: the model's files as they are now (name, size, modification time, inode: a
re-import or an edit makes a new key), the precision, whether our kernels hold the
products, the torch version (PyTorch's packed int4 layout is its own) and this
module's format. A file for an older key of the same folder is removed when a new one
is written. The file is written whole or not at all (atomic.atomic_file); one that
cannot be read is ignored and written again. PML_PREPARED=0 turns the cache off.

A load that finds the file maps its tensors (copy-on-write) instead of reading them:
nothing is copied into fresh memory (the default model at int4 loads in 0.02 s instead
of 0.10 s), and processes holding the same model share its pages.
Files are only ever replaced whole, so a mapped one outlives its removal.

A model loaded with a LoRA merged into its weights is not kept (its products are not
the model's); an adapter that runs beside the products leaves them as they are.
"""

import hashlib
import json
import os
from pathlib import Path

import torch

from pimpmyllama.atomic import atomic_file
from pimpmyllama.errors import PmlError
from pimpmyllama.generation.products import PRODUCTS, Product
from pimpmyllama.models.prepared_files import folder_tag, kept_for, prepared_dir
from pimpmyllama.models.weights import TensorFiles, read_metadata, safetensors_files

FORMAT = 2  # 2: int8 holds a minimum per group (products.Int8); a file of format 1 is made again
_FACTS = "pml.products"  # the safetensors metadata entry: product name -> (class, facts)


def prepared_path(folder: Path, precision: str, ours: bool) -> Path:
    """Where the products of `folder` at `precision` are kept, for the model's files as
    they are now."""
    key = hashlib.sha256()
    files = sorted({folder / "config.json", *safetensors_files(folder)})
    for path in files:
        info = path.stat()
        key.update(f"{path.name}:{info.st_size}:{info.st_mtime_ns}:{info.st_ino};".encode())
    key.update(f"{precision}:{ours}:{torch.__version__}:{FORMAT}".encode())
    return prepared_dir() / f"{folder_tag(folder)}-{key.hexdigest()[:16]}.safetensors"


def enabled() -> bool:
    return os.environ.get("PML_PREPARED", "1") != "0"


class PreparedProducts:
    """The products kept at `path`, if it holds them; those made during a load, to keep."""

    def __init__(self, folder: Path, precision: str, ours: bool, dtype: torch.dtype):
        self.folder, self.dtype = folder, dtype
        self.path = prepared_path(folder, precision, ours)
        self.found: dict[str, Product] = {}
        self.made: dict[str, Product] = {}
        if self.path.exists():
            try:
                self.found = self._read()
            except (PmlError, KeyError, TypeError, ValueError, RuntimeError):
                self.found = {}  # not ours to trust: made again, and the file replaced

    def _read(self) -> dict[str, Product]:
        described = json.loads(read_metadata(self.path)[_FACTS])
        reader = TensorFiles(self.path.parent, [self.path])
        products = {}
        for name, (kind, facts, fields) in described.items():
            tensors = {field: reader.mapped(f"{name}/{field}") for field in fields}
            products[name] = PRODUCTS[kind].restore(facts, tensors, self.dtype)
        return products

    def product(self, name: str, make) -> Product:
        """The kept product called `name`, or `make()`'s (kept when `save` is called)."""
        if name in self.found:
            return self.found[name]
        product = self.made[name] = make()
        return product

    def save(self) -> None:
        """Write every product of this load (all found again: nothing to write). A
        failure to write (a full disk, a read-only home) loses only the saving."""
        if not self.made:
            return
        from safetensors.torch import save_file

        described, tensors = {}, {}
        for name, product in {**self.found, **self.made}.items():
            facts, held = product.state()
            described[name] = (type(product).__name__, facts, sorted(held))
            tensors.update({f"{name}/{field}": t.contiguous() for field, t in held.items()})
        try:
            with atomic_file(self.path) as partial:
                save_file(tensors, str(partial), metadata={_FACTS: json.dumps(described)})
        except OSError:
            return
        for old in kept_for(self.folder):
            if old != self.path:
                old.unlink(missing_ok=True)

