"""`pml compare` end to end on the real default model and the town-hall documents:
what knowledge (RAG) and a short fine-tune change, seen through the comparison."""

import json
from pathlib import Path

import pytest

import pimpmyllama as pml
from pimpmyllama.models.defaults import DEFAULT_MODEL

pytestmark = pytest.mark.e2e
TOWN = Path(__file__).parents[2] / "examples" / "town-hall"
FACTS = [  # (question, expected): an hour only the documents give
    ("What time does the hairdresser on the square open?", ["9:30", "9.30", "9h30"]),
]
POST_OFFICE = ("At what time does the post office open in the morning?", ["9am", "9 am", "9:00"])
SHORT = [  # questions the fine-tune's data answers in one short sentence
    "Can I bring my dog to the park?", "Where can I buy a swimming cap?", "When does the post office close?",
    "Do I need an appointment for an identity card?", "Is the library open on Sunday?",
]


@pytest.fixture(scope="module")
def town(default_model_home, tmp_path_factory):
    """The default model's home with the town's documents (knowledge base e2e-town) and
    a short LoRA on the town hall's answers (adapter e2e-townhall)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PML_HOME", str(default_model_home))
        base = pml.create_knowledge_base("e2e-town")
        base.add([str(TOWN / "docs")])
        pml.train(data=[str(TOWN / "sft.jsonl")], output="e2e-townhall", max_steps=12, batch_size=2,
                  gradient_accumulation=2, max_length=256, learning_rate=1e-3, eval_split=0.0, save_steps=10_000)
        yield tmp_path_factory.mktemp("compare")


def test_rag_answers_what_the_base_cannot_and_the_fine_tune_answers_short_and_stops(town):
    (town / "questions.jsonl").write_text("\n".join(json.dumps(q) for q in [
        *({"question": q, "expected": e} for q, e in [*FACTS, POST_OFFICE]),
        *({"question": q, "check": {"type": "stops", "max_tokens": 40}} for q in SHORT)]) + "\n")
    (town / "compare.yml").write_text(
        "questions: questions.jsonl\nperplexity: false\nvariants:\n"
        f"  base: {{model: {DEFAULT_MODEL}, parameters: {{max_new_tokens: 64}}}}\n"
        "  rag: {extends: base, knowledge: [e2e-town]}\n"
        f"  tuned: {{extends: base, model: {DEFAULT_MODEL}+e2e-townhall}}\n"
    )
    results = pml.compare(town / "compare.yml", town / "out")
    rows = {(r.variant, r.question): r for r in results.rows}
    for question, _ in FACTS:  # the documents answer; the model alone cannot
        assert rows["rag", question].passed, rows["rag", question].reply
        assert not rows["base", question].passed, rows["base", question].reply
    # The post office: the base model guesses "9:00 AM" (any post office's hour); with
    # the documents, the town's 9am and not a neighbouring passage's 9:30 or 9:45.
    post = rows["rag", POST_OFFICE[0]]
    assert post.passed and "9:30" not in post.reply and "9:45" not in post.reply, post.reply
    assert post.passages[0].endswith("post-office.md#0")
    base, _, tuned = results.variants
    # The fine-tune's data answers in one short sentence that ends the turn (12 steps
    # teach that; the "Town hall:" prefix takes more: make demo trains 20 larger ones).
    print(f"stop rate {base.stop_rate:.2f} -> {tuned.stop_rate:.2f}, "
          f"reply tokens {base.mean_reply_tokens:.1f} -> {tuned.mean_reply_tokens:.1f}")
    assert tuned.stop_rate == 1.0 and base.stop_rate < 1.0
    assert tuned.mean_reply_tokens < 0.6 * base.mean_reply_tokens
