"""`/v1/models`: what a request's `model` may name — the stored builds, the store's
models (the bundled one always), and MODEL+ADAPTER for each stored adapter on the model it was made from."""

from pimpmyllama import api
from pimpmyllama.models.adapters import AdapterStore
from pimpmyllama.models.defaults import DEFAULT_MODEL
from pimpmyllama.prompting.builds import BuildStore
from pimpmyllama.prompting.refs import BUILD_PREFIX


def served_models() -> list[dict]:
    models = [m.name for m in api.list_models() if m.info is not None]  # broken folders cannot serve
    builds = BuildStore().names()
    entries = [(f"{BUILD_PREFIX}{b}" if b in models else b, "build") for b in builds]  # a clash needs the prefix
    entries += [(m, "model") for m in models]
    if DEFAULT_MODEL not in models:  # the bundled model is imported on its first request
        entries.append((DEFAULT_MODEL, "model"))
    adapters = AdapterStore()
    for name in api.list_adapters():
        meta = adapters.meta(name)
        if meta is not None and meta.base is not None and meta.base.ref in models:
            entries.append((f"{meta.base.ref}+{name}", "model+adapter"))
    return [{"id": ref, "object": "model", "created": 0, "owned_by": "pimpmyllama", "kind": kind}
            for ref, kind in entries]
