"""The Python API: what `pml` does, for notebooks, scripts and tests. The CLI is a
thin layer over these functions (it parses, calls one, and renders the result).

    import pimpmyllama as pml

    chat = pml.open_chat("town-hall", session="mairie")   # a build, a model, MODEL+ADAPTER
    reply = chat.send("When does the post office open?")
    print(reply.text(), reply.completion.usage.as_dict())

    print(pml.ask("What is the capital of France?"))

    kb = pml.create_knowledge_base("town")
    kb.add(["docs/"])
    hits = kb.search("post office hours", k=3)

    pml.train(data=["chat.jsonl"], output="form", max_steps=50)    # TrainConfig's fields
    pml.merge("recipe.yml", "merged")
    pml.perplexity("smollm2-135m-instruct+form", ["notes.txt"])
    results = pml.compare("compare.yml", "out")        # report.html, report.md, results.jsonl

References (`town-hall`, `MODEL+ADAPTER`, folders, build files) follow one grammar:
see docs/references.md. Errors a user can act on are `pimpmyllama.errors.PmlError`.
"""

from pathlib import Path

from pimpmyllama.chat.conversation import Conversation
from pimpmyllama.chat.opening import open_conversation
from pimpmyllama.config_files import validate
from pimpmyllama.errors import InvalidInputError
from pimpmyllama.evaluation.long_perplexity import (
    WindowPerplexity,
    plan_window_perplexity,
    window_perplexity,
)
from pimpmyllama.evaluation.results import ComparisonResults
from pimpmyllama.evaluation.runner import default_output, run_comparison
from pimpmyllama.generation.checks import check_model_runs
from pimpmyllama.knowledge.bases import Base, create_base, knowledge_store, open_base
from pimpmyllama.merging import lora as _lora
from pimpmyllama.merging.export import export_model
from pimpmyllama.merging.merge import merge_to_store
from pimpmyllama.models.adapters import AdapterStore
from pimpmyllama.models.store import Listed, ModelStore
from pimpmyllama.names import check_name
from pimpmyllama.progress import Progress
from pimpmyllama.prompting.build import Build, RopeScaling, load_build_file
from pimpmyllama.prompting.builds import BuildStore
from pimpmyllama.prompting.check import check_build
from pimpmyllama.training.config import TrainConfig
from pimpmyllama.training.perplexity import model_perplexity
from pimpmyllama.training.recipe import OnStep, TrainResult
from pimpmyllama.training.recipe import train as _train

__all__ = [
    "open_chat", "ask", "list_models", "list_adapters", "import_model", "create_build", "knowledge_base",
    "create_knowledge_base", "list_knowledge_bases", "train", "merge", "merge_lora", "extract_lora", "export", "perplexity",
    "compare", "long_perplexity",
]


# Chat ---------------------------------------------------------------------------

def open_chat(ref: str | None = None, *, session: str | None = None, new_session: bool = False,
              continue_latest: bool = False, knowledge: list[str] | None = None, adapter: str | None = None,
              precision: str | None = None, styles: list | None = None,
              progress: Progress | None = None) -> Conversation:
    """A conversation with a build or model (default: the bundled model). With
    `session`, the turns are remembered under that name (created if new); without
    one, nothing is stored unless `new_session`. `styles` (names, or {name: {parameter:
    value}}) are added to the build's."""
    conversation, _ = open_conversation(ref, session, continue_latest=continue_latest, new_session=new_session,
                                        knowledge=knowledge, adapter=adapter, precision=precision,
                                        styles=styles, progress=progress)
    return conversation


def ask(question: str, ref: str | None = None, **options) -> str:
    """One question, one reply's text (options as for `open_chat`)."""
    return open_chat(ref, **options).send(question).text()


# Models, builds ---------------------------------------------------------------------

def list_models() -> list[Listed]:
    """Every folder of the model store, with its info or why it is not usable."""
    return ModelStore().listing()


def list_adapters() -> list[str]:
    return AdapterStore().names()


def import_model(source: str | Path, name: str | None = None, *, force: bool = False,
                 progress: Progress | None = None) -> str:
    """A Hugging Face folder or a GGUF file into the store; returns its name."""
    return ModelStore().import_model(Path(source), name, progress, force=force, check=check_model_runs)


def create_build(name: str, build: Build | str | Path, *, force: bool = False,
                 progress: Progress | None = None) -> Build:
    """Save a build (a `Build`, or a YAML file) under `name`, checked against its model."""
    check_name(name, "build")
    store = BuildStore()
    if store.exists(name) and not force:
        raise InvalidInputError(f"a build named {name!r} already exists (use --force to replace it)")
    if not isinstance(build, Build):
        build = load_build_file(Path(build))
    check_build(build, progress)
    store.save(name, build)
    return build


# Knowledge -------------------------------------------------------------------------

def knowledge_base(name: str, db: str | None = None) -> Base:
    return open_base(name, db)


def create_knowledge_base(name: str, **options) -> Base:
    """options: embedder, chunk_size, overlap, db."""
    return create_base(name, **options)


def list_knowledge_bases(db: str | None = None):
    return knowledge_store(db).summaries()


# Training, merging, measuring -------------------------------------------------------

def train(config: TrainConfig | None = None, *, resume: bool = False, on_step: OnStep | None = None,
          **fields) -> TrainResult:
    """A training run: a `TrainConfig`, or its fields as keywords (`from_` or `**{"from": ...}`)."""
    if config is None:
        config = TrainConfig.model_validate(fields)
    elif fields:
        config = config.model_copy(update=fields)
    return _train(config, resume=resume, on_step=on_step)


def merge(recipe: str | Path, name: str, *, seed: int = 0, force: bool = False,
          progress: Progress | None = None) -> Path:
    """A mergekit recipe into a new store model."""
    return merge_to_store(Path(recipe), name, seed=seed, progress=progress, force=force)


def merge_lora(model: str, adapter: str, name: str, *, force: bool = False,
               progress: Progress | None = None) -> Path:
    """MODEL + ADAPTER baked into a new store model."""
    return _lora.merge_lora_to_store(model, adapter, name, progress, force=force)


def extract_lora(tuned: str, base: str, name: str, *, rank: int = 16, force: bool = False,
                 progress: Progress | None = None) -> _lora.Extraction:
    """An adapter recovered from a fine-tune: its difference from `base`, by SVD."""
    return _lora.extract_lora(tuned, base, rank, name, progress, force=force)


def export(ref: str, output: str | Path, *, base: str | None = None, progress: Progress | None = None,
           format: str = "hf", quant: str | None = None) -> Path:
    """`ref` as a standalone Hugging Face folder (`hf`, an adapter merged into its base), a
    GGUF file (`gguf`), a folder for Ollama (`ollama`: GGUF + Modelfile of the build) or a
    GGUF LoRA (`gguf-lora`); `quant` f16 | f32 | q8_0 | q4_1 for the GGUF formats."""
    return export_model(ref, Path(output), base=base, progress=progress, format=format, quant=quant)


def perplexity(ref: str, files: list[str | Path], *, max_length: int = 512) -> tuple[float, int]:
    """(perplexity, scored tokens) of a model, MODEL+ADAPTER or build on text files or datasets."""
    return model_perplexity(ref, [Path(f) for f in files], max_length=max_length)


def long_perplexity(ref: str, files: list[str | Path], num_ctx: int, *, rope_scaling: dict | None = None,
                    precision: str | None = None, windows: int | None = None) -> WindowPerplexity:
    """Perplexity over non-overlapping windows of `num_ctx` tokens on our engine, with
    `rope_scaling` ({"type": "yarn", "factor": 2}; default: the build's) — what a longer
    context costs. Refused before loading when num_ctx exceeds the stretched context or
    the KV cache (`plan_window_perplexity(...).kv_cache`) does not fit in memory."""
    scaling = validate(RopeScaling, rope_scaling, "rope_scaling") if rope_scaling is not None else None
    plan = plan_window_perplexity(ref, num_ctx, scaling, precision)
    return window_perplexity(plan, [Path(f) for f in files], windows)


def compare(spec: str | Path, out: str | Path | None = None, *, progress: Progress | None = None) -> ComparisonResults:
    """Run (or complete: answers are cached in `out`) the comparison a spec describes;
    writes `out`/report.html, report.md and results.jsonl (default `out`:
    compare-SPEC in the current folder) and returns the results."""
    spec = Path(spec)
    return run_comparison(spec, Path(out) if out is not None else default_output(spec), progress)
