"""From a recipe to a plan: for every output tensor, its inputs and its parameters.
Everything that can be checked is checked here, before any tensor is computed:
models, architectures, tensor names and shapes, vocabularies, method arity,
parameter names and ranges. A mismatch names the first offending tensor."""

import hashlib
import re
from dataclasses import dataclass, field

import torch

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.merging.config import InputSlice, MergeConfig, OutputSlice, evaluate
from pimpmyllama.merging.inputs import Source, resolve_source, vocabulary
from pimpmyllama.merging.methods import get_method
from pimpmyllama.merging.methods.base import REQUIRED, MergeMethod

_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)$")
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16, "fp32": torch.float32,
           "fp16": torch.float16, "bf16": torch.bfloat16}
_RANGES = {"density": (0.0, 1.0, False, True), "gamma": (0.0, 1.0, True, False), "epsilon": (0.0, 1.0, True, False),
           "t": (0.0, 1.0, True, True)}  # name: (low, high, low included, high included)
EMBEDDINGS = ("model.embed_tokens.weight", "lm_head.weight")


@dataclass
class TensorPlan:
    name: str
    inputs: list[tuple[int, str]]  # (source index, input tensor name)
    base: int | None  # position in `inputs` of the base model's tensor
    params: dict
    model_params: list[dict]
    shape: tuple[int, ...]
    t: float


@dataclass
class MergePlan:
    config: MergeConfig
    method: MergeMethod
    sources: list[Source]
    tensors: list[TensorPlan]
    out_config: dict
    tokenizer_from: Source
    compute_dtype: torch.dtype
    out_dtype: torch.dtype
    seed: int
    row_maps: dict[int, torch.Tensor] = field(default_factory=dict)  # source -> output row -> its row (vocab)
    device: torch.device = torch.device("cpu")  # where each tensor is computed (read and written on the CPU)

    def generator(self, tensor_name: str) -> torch.Generator | None:
        """Random methods draw from a generator seeded by (seed, tensor): the same recipe
        and seed give the same model, in any order of computation."""
        if not self.method.random:
            return None
        digest = hashlib.sha256(f"{self.seed}:{tensor_name}".encode()).digest()
        return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def _dtype(name: str | None, what: str) -> torch.dtype | None:
    if name is None:
        return None
    if name not in _DTYPES:
        raise InvalidInputError(f"unknown {what} {name!r} (known: float32, float16, bfloat16)")
    return _DTYPES[name]


def _leaves(setting) -> list:
    """Every value a setting can take: its scalars, list items and condition values."""
    if isinstance(setting, list):
        return [leaf for item in setting for leaf in _leaves(item.value if hasattr(item, "value") else item)]
    return [setting]


def _check_type(name: str, setting, default) -> None:
    """A parameter whose default is true/false takes true/false; every other one a number."""
    flag = isinstance(default, bool)
    for value in _leaves(setting):
        if flag and not isinstance(value, bool):
            raise InvalidInputError(f"parameter {name!r} must be true or false, not {value!r}")
        if not flag and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InvalidInputError(f"parameter {name!r} must be a number, not {value!r}")


def _check_parameter_names(config: MergeConfig, method: MergeMethod) -> None:
    """Names, types and ranges of every parameter in the recipe, before any tensor is read."""
    declared = {**method.parameters, **method.tensor_parameters}
    known = set(declared)
    blocks = [config.parameters or {}]
    blocks += [m.parameters or {} for m in config.models or []]
    for s in config.slices or []:
        blocks.append(s.parameters or {})
        blocks += [src.parameters or {} for src in s.sources]
    for block in blocks:
        for name, setting in block.items():
            if name not in known:
                raise InvalidInputError(
                    f"unknown parameter {name!r} for merge method {method.name} (known: {', '.join(sorted(known)) or 'none'})"
                )
            _check_type(name, setting, declared[name])
            if name in _RANGES:
                low, high, low_in, high_in = _RANGES[name]
                for value in _numbers(setting):
                    ok = (value >= low if low_in else value > low) and (value <= high if high_in else value < high)
                    if not ok:
                        interval = f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"
                        raise InvalidInputError(f"{name} {value} is outside {interval}")


def _numbers(setting) -> list[float]:
    if isinstance(setting, bool):
        return []
    if isinstance(setting, (int, float)):
        return [float(setting)]
    if isinstance(setting, list):
        out = []
        for item in setting:
            out += _numbers(item.value if hasattr(item, "value") else item)
        return out
    return []


def _slices(config: MergeConfig, sources: dict[str, Source]) -> list[OutputSlice]:
    if config.slices:
        return config.slices
    inputs = [InputSlice(model=m.model, layer_range=(0, sources[m.model].layers), parameters=m.parameters)
              for m in config.models]
    if config.base_model and config.base_model not in [m.model for m in config.models]:
        inputs.append(InputSlice(model=config.base_model, layer_range=(0, sources[config.base_model].layers)))
    return [OutputSlice(sources=inputs)]


def _lookup(name: str, blocks: list[dict | None], tensor: str, t: float):
    for block in blocks:
        if block and name in block:
            value = evaluate(block[name], tensor, t)
            if value is not None:
                return value
    return None


def _check_arity(method: MergeMethod, s: OutputSlice, base: str | None, number: int) -> int | None:
    models = [src.model for src in s.sources]
    base_index = models.index(base) if base in models else None
    if method.needs_base and base_index is None:
        raise InvalidInputError(
            f"{method.name} needs a base model among its inputs (slice {number}: "
            f"{'base_model ' + repr(base) + ' is not one of its sources' if base else 'no base_model given'})"
        )
    others = len(models) - (1 if base_index is not None else 0)
    low, high = method.others
    if others < low or (high is not None and others > high):
        wanted = f"exactly {low}" if low == high else (f"at least {low}" if high is None else f"{low} to {high}")
        base_part = "a base model and " if method.needs_base else ""
        raise InvalidInputError(f"{method.name} takes {base_part}{wanted} other model(s); slice {number} has {others}")
    return base_index


def build_plan(config: MergeConfig, seed: int = 0) -> MergePlan:
    method = get_method(config.merge_method)
    _check_parameter_names(config, method)
    refs = config.referenced()
    sources_by_ref = {ref: resolve_source(ref) for ref in refs}
    sources = list(sources_by_ref.values())
    index = {ref: i for i, ref in enumerate(refs)}

    kinds = {s.config.get("model_type") for s in sources}
    if len(kinds) > 1:
        raise InvalidInputError(f"the models have different architectures ({', '.join(sorted(map(str, kinds)))})")

    tokenizer_from, row_maps = _vocabularies(config, sources_by_ref, sources)
    slices = _slices(config, sources_by_ref)
    tensors: list[TensorPlan] = []
    first = sources_by_ref[slices[0].sources[0].model]

    def plan(out_name, in_names, s: OutputSlice, t: float, base_index):
        inputs = []
        for src, in_name in zip(s.sources, in_names):
            source = sources_by_ref[src.model]
            if not source.has(in_name):
                raise InvalidInputError(f"tensor {in_name} is missing from {source.name}")
            inputs.append((index[src.model], in_name))
        shapes = []
        for (i, in_name) in inputs:
            shape = sources[i].shape(in_name)
            if in_name in EMBEDDINGS and i in row_maps:
                shape = (len(row_maps[i]),) + shape[1:]
            shapes.append(shape)
        for (i, in_name), shape in zip(inputs, shapes):
            if shape != shapes[0]:
                a, b = sources[inputs[0][0]], sources[i]
                if in_name in EMBEDDINGS and shape[1:] == shapes[0][1:]:
                    hint = " (different vocabularies: set tokenizer_source)"
                else:
                    hint = " (models of different sizes cannot be merged tensor by tensor)"
                raise InvalidInputError(
                    f"tensor {in_name} has shape {shapes[0]} in {a.name} but {shape} in {b.name}{hint}"
                )
        blocks_global = [s.parameters, config.parameters]
        params = {}
        for p, default in method.parameters.items():
            value = _lookup(p, blocks_global, out_name, t)
            if value is None:
                if default is REQUIRED:
                    raise InvalidInputError(f"{method.name} needs parameter {p!r} (for {out_name})")
                value = default
            params[p] = value
        model_params = []
        for position, (src, (_, in_name)) in enumerate(zip(s.sources, inputs)):
            values = {}
            for p, default in method.tensor_parameters.items():
                value = _lookup(p, [src.parameters, s.parameters, config.parameters], in_name, t)
                if value is None:
                    if default is REQUIRED and position != base_index:
                        raise InvalidInputError(
                            f"{method.name} needs parameter {p!r} for model {src.model} (for {in_name})"
                        )
                    value = None if default is REQUIRED else default
                values[p] = value
            model_params.append(values)
        tensors.append(TensorPlan(out_name, inputs, base_index, params, model_params, shapes[0], t))

    bases = []
    for number, s in enumerate(slices, start=1):
        lengths = {src.layer_range[1] - src.layer_range[0] for src in s.sources}
        if len(lengths) != 1:
            raise InvalidInputError(f"slice {number}: all sources must have the same number of layers")
        for src in s.sources:
            low, high = src.layer_range
            if not 0 <= low < high <= sources_by_ref[src.model].layers:
                raise InvalidInputError(f"slice {number}: layer_range {list(src.layer_range)} is outside "
                                        f"{src.model}'s {sources_by_ref[src.model].layers} layers")
        bases.append(_check_arity(method, s, s.base_model or config.base_model, number))

    names = first.files.names()
    layer_suffixes: dict[int, list[str]] = {}
    for name in names:
        m = _LAYER.match(name)
        if m:
            layer_suffixes.setdefault(int(m[1]), []).append(m[2])
    singles = [n for n in names if not _LAYER.match(n)]
    for name in sorted(n for n in singles if "embed" in n):
        plan(name, [name] * len(slices[0].sources), slices[0], 0.0, bases[0])
    out_layer = 0
    for number, s in enumerate(slices):
        n = s.sources[0].layer_range[1] - s.sources[0].layer_range[0]
        for offset in range(n):
            t = offset / (n - 1) if n > 1 else 1.0
            first_in = sources_by_ref[s.sources[0].model]
            suffixes = sorted(n_ for n_ in first_in.files.names()
                              if (m := _LAYER.match(n_)) and int(m[1]) == s.sources[0].layer_range[0] + offset)
            for full in suffixes:
                suffix = _LAYER.match(full)[2]
                in_names = [f"model.layers.{src.layer_range[0] + offset}.{suffix}" for src in s.sources]
                plan(f"model.layers.{out_layer}.{suffix}", in_names, s, t, bases[number])
            out_layer += 1
    for name in sorted(n for n in singles if "embed" not in n):
        plan(name, [name] * len(slices[-1].sources), slices[-1], 0.0, bases[-1])

    reference = sources_by_ref[config.base_model] if config.base_model else first
    out_config = dict(reference.config)
    out_config["num_hidden_layers"] = out_layer
    if tokenizer_from is not reference:
        out_config["vocab_size"] = len(vocabulary(tokenizer_from.folder) or {}) or out_config.get("vocab_size")
    compute = _dtype(config.dtype, "dtype") or torch.float32
    out_dtype = _dtype(config.out_dtype, "out_dtype") or _dtype(config.dtype, "dtype")
    if out_dtype is None:
        out_dtype = reference.files.read(names[0]).dtype if names else torch.float32
    return MergePlan(config, method, sources, tensors, out_config, tokenizer_from, compute, out_dtype, seed, row_maps)


def _vocabularies(config: MergeConfig, by_ref: dict[str, Source], sources: list[Source]):
    vocabs = [vocabulary(s.folder) for s in sources]
    same = all(v == vocabs[0] for v in vocabs)
    choice = config.tokenizer_source
    if choice in (None, "base"):
        tokenizer_from = by_ref[config.base_model] if config.base_model else sources[0]
    elif choice == "union":
        if not same:
            raise InvalidInputError("tokenizer_source: union is not supported; use base or one of the models")
        tokenizer_from = sources[0]
    else:
        if choice not in by_ref:
            raise InvalidInputError(f"tokenizer_source {choice!r} is not one of the recipe's models")
        tokenizer_from = by_ref[choice]
    if same:
        return tokenizer_from, {}
    if choice is None:
        a = next(i for i, v in enumerate(vocabs) if v != vocabs[0])
        raise InvalidInputError(
            f"tensor model.embed_tokens.weight: {sources[0].name} and {sources[a].name} have different vocabularies "
            f"({len(vocabs[0] or {})} and {len(vocabs[a] or {})} tokens); set tokenizer_source: base "
            "(or one of the models) in the recipe to align the embeddings by token"
        )
    # Align every model's embedding rows to the chosen tokenizer, token by token; a
    # token a model lacks (-1) takes the tokenizer source's own row.
    target = vocabulary(tokenizer_from.folder) or {}
    row_maps = {}
    for i, vocab in enumerate(vocabs):
        rows = torch.full((len(target),), -1, dtype=torch.long)
        for token, out_id in target.items():
            if vocab and token in vocab:
                rows[out_id] = vocab[token]
        row_maps[i] = rows
    return tokenizer_from, row_maps
