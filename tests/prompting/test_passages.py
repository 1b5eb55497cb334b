"""The knowledge wrapper (retrieval.template): the measured defaults, a build's own
template filled exactly, and bad templates refused in one line."""

import pytest

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.prompting.build import parse_build
from pimpmyllama.prompting.format import ChatFormat
from pimpmyllama.prompting.packer import Passage, Shares, pack_context
from pimpmyllama.prompting.passages import PassagePrompt
from pimpmyllama.prompting.tokenizer import Tokenizer

PASSAGES = [Passage("The post office opens at 9am.", "[1] (poste.txt)", 0.84),
            Passage("The hairdresser opens at 9:30.", "[2] (coiffeur.txt)", 0.61)]


def test_the_default_wrapper_asks_for_citations():
    assert PassagePrompt().render("When?", PASSAGES) == (
        "Context information is below.\n---------------------\n"
        "The post office opens at 9am.\nThe hairdresser opens at 9:30.\n"
        "---------------------\n"
        "Given the context information and not prior knowledge, answer the query, citing the passages you use by "
        "their numbers.\nQuery: When?\nAnswer:"
    )
    assert parse_build("").retrieval.passage_prompt() == PassagePrompt()
    no_cite = parse_build("retrieval: {cite: false}").retrieval.passage_prompt().render("When?", PASSAGES)
    assert "answer the query.\nQuery: When?\nAnswer:" in no_cite and "citing" not in no_cite
    assert PassagePrompt().render("When?", []) == "When?"


def test_best_last_puts_the_best_passage_next_to_the_question_with_its_rank_kept():
    prompt = parse_build("retrieval: {order: best_last, template: '{passages}|{question}', "
                         "passage_template: '{label} {text}'}").retrieval
    assert prompt.passage_prompt().render("When?", PASSAGES) == (
        "[2] (coiffeur.txt) The hairdresser opens at 9:30.\n[1] (poste.txt) The post office opens at 9am.|When?")


def test_a_builds_own_template_is_filled_exactly(tiny_model):
    build = parse_build(
        "retrieval:\n"
        "  template: \"Facts:\\n{passages}\\n\\nUsing only these facts{cite}, answer: {question}\"\n"
        "  passage_template: '- {text} (source {label})'\n"
    )
    fmt = ChatFormat(Tokenizer(tiny_model))
    packed = pack_context(fmt, message="When does the post office open?", num_ctx=512, max_new_tokens=64,
                          knowledge=PASSAGES, shares=Shares(knowledge=1.0), wrapper=build.retrieval.passage_prompt())
    assert packed.messages[-1] == {"role": "user", "content": (
        "Facts:\n- The post office opens at 9am. (source [1] (poste.txt))\n"
        "- The hairdresser opens at 9:30. (source [2] (coiffeur.txt))\n\n"
        "Using only these facts, citing the passages you use by their numbers, answer: "
        "When does the post office open?")}
    knowledge = next(s for s in packed.sections if s.name == "knowledge")
    assert knowledge.kept == 2 and knowledge.tokens == sum(
        fmt.tokenizer.count(f"- {p.text} (source {p.label})") for p in PASSAGES)
    assert packed.prompt_ids == fmt.encode(packed.messages)


@pytest.mark.parametrize("retrieval, message", [
    ("{template: 'Answer {question}'}", "'retrieval.template': Value error, the template needs the field {passages}"),
    ("{template: '{passages} {question} {source}'}", "unknown field {source} (fields: {passages}, {question}, {cite})"),
    ("{template: '{passages} {question.__class__}'}", "{question.__class__} is not a field name"),
    ("{template: '{passages {question}'}", "'retrieval.template'"),
    ("{passage_template: '{label}'}", "'retrieval.passage_template': Value error, the template needs the field {text}"),
    ("{mode: keyword, min_similarity: 0.3}", "min_similarity needs mode dense or hybrid"),
    ("{min_similarity: 2}", "'retrieval.min_similarity': Input should be less than or equal to 1"),
    ("{mode: keyword, margin: 0.1}", "margin needs mode dense or hybrid"),
    ("{order: random}", "'retrieval.order': Input should be 'best_first' or 'best_last'"),
])
def test_bad_retrieval_settings_are_one_line(retrieval, message):
    with pytest.raises(InvalidInputError) as err:
        parse_build(f"retrieval: {retrieval}", "b.yml")
    assert message in str(err.value) and "\n" not in str(err.value)
