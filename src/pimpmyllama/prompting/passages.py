"""The knowledge wrapper: how retrieved passages and the question are put together
into the last user message (a build's `retrieval.template`).

Fields of `template`: `{passages}` (every passage, one a line, best first),
`{question}` (the user's message) and `{cite}` (`CITE` when citations are asked
for, else empty). Fields of `passage_template`: `{label}` (`[1] (hours.md)`: the
number the reply cites and the file) and `{text}`. Passages go next to the
question, as LlamaIndex's QA prompt does: small models follow context there far
better than in the system prompt (measured on SmolLM2-135M).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pimpmyllama.prompting.fields import check_fields

DEFAULT_TEMPLATE = (
    "Context information is below.\n---------------------\n"
    "{passages}\n---------------------\n"
    "Given the context information and not prior knowledge, answer the query{cite}.\n"
    "Query: {question}\nAnswer:"
)
# Chosen with `pml compare` (bench/rag_defaults, docs/builds-and-context.md): passages
# without their labels, and the citing phrase kept, answered 26 of 45 questions over two
# corpora against 20 of 45 for "{label} {text}".
DEFAULT_PASSAGE_TEMPLATE = "{text}"
CITE = ", citing the passages you use by their numbers"
TEMPLATE_FIELDS = ("passages", "question", "cite")
PASSAGE_FIELDS = ("label", "text")


class _Passage(Protocol):
    label: str
    text: str


def check_template(template: str) -> str:
    return check_fields(template, TEMPLATE_FIELDS, required=("passages", "question"))


def check_passage_template(template: str) -> str:
    return check_fields(template, PASSAGE_FIELDS, required=("text",))


@dataclass(frozen=True)
class PassagePrompt:
    template: str = DEFAULT_TEMPLATE
    passage_template: str = DEFAULT_PASSAGE_TEMPLATE
    cite: bool = True
    best_last: bool = False  # the best passage next to the question (labels keep their rank)

    def passage(self, p: _Passage) -> str:
        return self.passage_template.format(label=p.label, text=p.text).strip()

    def render(self, question: str, passages: Sequence[_Passage]) -> str:
        """The question alone when there are no passages, else the filled template."""
        if not passages:
            return question
        ordered = list(reversed(passages)) if self.best_last else passages
        return self.template.format(passages="\n".join(self.passage(p) for p in ordered), question=question,
                                    cite=CITE if self.cite else "")
