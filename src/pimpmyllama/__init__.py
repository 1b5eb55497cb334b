"""pimpmyllama: customize an open Llama-family model locally, and see what each customization does.

The Python API is in `pimpmyllama.api` and reachable from here (`pimpmyllama.open_chat`,
`pimpmyllama.train`, ...); it is imported on first use, so `import pimpmyllama` stays light. `pimpmyllama.create_app`
is the server's ASGI app factory (serving/app.py), to mount in another app or test in-process.
"""

import importlib

__version__ = "0.1.0"


def __getattr__(name: str):
    if name.startswith("_") or name == "api":
        raise AttributeError(name)
    if name == "create_app":
        return importlib.import_module("pimpmyllama.serving.app").create_app
    api = importlib.import_module("pimpmyllama.api")
    if name in api.__all__:
        return getattr(api, name)
    raise AttributeError(f"module 'pimpmyllama' has no attribute {name!r}")
