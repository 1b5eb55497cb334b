"""The compare spec: a YAML file naming the variants, the questions and the texts.

    questions: [questions.jsonl]          # JSONL files, relative to the spec file
    tags: [hours]                         # only the questions with one of these tags (optional)
    texts: {domain: docs/all.txt}         # perplexity texts; general: the text `pml train` uses
    repeats: 1                            # per question, for sampled variants (greedy ones run once)
    seed: 0                               # repeat r samples with seed + r
    pairs: [[base, rag]]                  # flips reported for these (default: the first vs each)
    judge: base                           # a variant that grades every reply yes/no (optional)
    variants:
      base:   {model: smollm2-135m-instruct}
      prompted: {build: town-hall}
      rag:    {extends: prompted, knowledge: [town]}
    ablate: rag                           # all, and all minus each lever of this variant

Unknown keys are refused with the key's path (`variants.rag.knowlege`).
"""

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pimpmyllama.config_files import parse_yaml_mapping, read_config_text


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Texts(_Strict):
    domain: str | None = Field(None, description="a text of the user's domain (what a fine-tune should gain)")
    general: str | None = Field(None, description="a general text (what it may forget); default: the one "
                                                  "`pml train` measures")


class VariantSpec(_Strict):
    """A build in the end: `build` (a name, a file or an inline mapping) or `model`
    (MODEL[+ADAPTER]), started from `extends`, then the build fields below overridden
    (`parameters` and `retrieval` key by key)."""

    extends: str | None = Field(None, description="start from this variant")
    build: str | dict | None = Field(None, description="a stored build, a build file, or an inline build")
    model: str | None = Field(None, description="MODEL[+ADAPTER]: the build's `from` and `adapter`")
    system: str | None = None
    styles: list | None = None
    knowledge: list[str] | None = None
    pinned: list[str] | None = None
    messages: list[dict] | None = None
    parameters: dict | None = None
    adapter: str | None = None
    precision: str | None = None
    retrieval: dict | None = None

    def overrides(self) -> dict:
        """The build fields this variant sets itself (null counts: it clears the field)."""
        return {k: getattr(self, k) for k in OVERRIDES if k in self.model_fields_set}


OVERRIDES = ("system", "styles", "knowledge", "pinned", "messages", "adapter", "precision")
MERGED = ("parameters", "retrieval")


class Spec(_Strict):
    questions: list[str] = Field(min_length=1, description="JSONL question files")
    tags: list[str] | None = Field(None, description="ask only the questions with one of these tags")
    texts: Texts = Field(default_factory=Texts)
    perplexity: bool = Field(True, description="measure perplexity on the texts (false: skip)")
    repeats: int = Field(1, ge=1, le=1000)
    seed: int = 0
    judge: str | None = Field(None, description="a variant that grades every reply yes or no (its model and "
                                                "template only)")
    pairs: list[tuple[str, str]] | None = None
    variants: dict[str, VariantSpec] = Field(min_length=1)
    ablate: str | None = None

    @field_validator("questions", mode="before")
    @classmethod
    def _one_or_many(cls, value):
        return [value] if isinstance(value, str) else value


def load_spec(path: Path) -> Spec:
    return parse_yaml_mapping(read_config_text(path), str(path),
                              "a compare spec is a mapping with 'questions' and 'variants'", Spec)
