"""A comparison's plan: the spec read, every variant resolved to a build, every
question file read and every check compiled, every knowledge base found. Nothing
is written while planning, so bad input leaves the output folder untouched."""

from dataclasses import dataclass
from pathlib import Path

from pimpmyllama.errors import InvalidInputError, PmlError
from pimpmyllama.evaluation.questions import Question, read_questions
from pimpmyllama.evaluation.spec import Spec, load_spec
from pimpmyllama.evaluation.variants import Variant, resolve_variants
from pimpmyllama.knowledge.store import KnowledgeStore
from pimpmyllama.prompting.styles import resolve_styles
from pimpmyllama.storage.db import open_database
from pimpmyllama.training.perplexity import default_general_text


@dataclass
class Plan:
    source: Path  # the spec file
    spec: Spec
    variants: dict[str, Variant]
    questions: list[Question]
    texts: dict[str, Path]  # "domain", "general" -> file, for perplexity
    pairs: list[tuple[str, str]]

    def seeds(self, variant: Variant) -> list[int]:
        """Greedy variants answer once per question; sampled ones `repeats` times."""
        if variant.build.parameters.temperature == 0:
            return [self.spec.seed]
        return [self.spec.seed + r for r in range(self.spec.repeats)]

    @property
    def total_answers(self) -> int:
        return sum(len(self.seeds(v)) for v in self.variants.values()) * len(self.questions)


def _text(path: str, base_dir: Path, key: str) -> Path:
    found = Path(path).expanduser()
    found = found if found.is_absolute() else base_dir / found
    if not found.is_file():
        raise InvalidInputError(f"texts.{key}: {found} does not exist")
    return found


def _check_knowledge(variants: dict[str, Variant]) -> None:
    names = {(v.name, kb) for v in variants.values() for kb in v.build.knowledge}
    if not names:
        return
    store = KnowledgeStore(open_database())
    for variant, kb in sorted(names):
        try:
            store.get(kb)
        except PmlError as exc:
            raise type(exc)(f"variant {variant!r}: {exc}") from None


def _check_styles(variants: dict[str, Variant]) -> None:
    for variant in variants.values():
        try:
            resolve_styles(variant.build.styles)
        except PmlError as exc:
            raise type(exc)(f"variant {variant.name!r}: {exc}") from None


def make_plan(path: Path) -> Plan:
    spec = load_spec(path)
    source = str(path)
    base_dir = path.resolve().parent
    variants = resolve_variants(spec, base_dir, source)
    questions = read_questions([_text_path(q, base_dir) for q in spec.questions])
    if spec.tags is not None:
        questions = [q for q in questions if set(q.tags) & set(spec.tags)]
        if not questions:
            raise InvalidInputError(f"{source}: tags: no question has any of the tags {', '.join(spec.tags)}")
    names = list(spec.variants)
    pairs = [tuple(p) for p in spec.pairs] if spec.pairs is not None else [(names[0], o) for o in names[1:]]
    for a, b in pairs:
        for name in (a, b):
            if name not in variants:
                raise InvalidInputError(f"{source}: pairs: unknown variant {name!r} (known: {', '.join(variants)})")
    if spec.judge is not None and spec.judge not in variants:
        raise InvalidInputError(f"{source}: judge: unknown variant {spec.judge!r} (known: {', '.join(variants)})")
    texts = {key: _text(value, base_dir, key) for key, value in spec.texts if value}  # checked even if unused
    if not spec.perplexity:
        texts = {}
    elif "general" not in texts:

        texts["general"] = default_general_text()
    _check_knowledge(variants)
    _check_styles(variants)
    return Plan(path, spec, variants, questions, texts, pairs)


def _text_path(path: str, base_dir: Path) -> Path:
    found = Path(path).expanduser()
    return found if found.is_absolute() else base_dir / found
