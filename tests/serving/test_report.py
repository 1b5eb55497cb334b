"""The `pml` field of a reply: the passages it could cite and how its prompt was spent —
the packer's own numbers, the same as the REPL's /context."""

import json

from serve_client import chat, sse_events

from pimpmyllama import api
from pimpmyllama.prompting.build import Build
from pimpmyllama.prompting.builds import BuildStore

HOURS = "The post office opens at nine and closes at noon on Saturdays."


def town_base(tmp_path):
    doc = tmp_path / "hours.md"
    doc.write_text(f"# Hours\n\n{HOURS}\n")
    api.create_knowledge_base("town").add([str(doc)])
    return doc


def test_a_builds_knowledge_passages_come_back_with_their_sources(client, fake_engine, tmp_path):
    doc = town_base(tmp_path)
    BuildStore().save("desk", Build.model_validate({"from": "tiny", "knowledge": ["town"]}))
    body = chat(client, "When does the post office open?", model="desk").json()
    [source] = body["pml"]["sources"]
    assert {k: v for k, v in source.items() if k != "score"} == {
        "number": 1, "document": "hours.md", "source": str(doc.resolve()), "chunk": 0, "page": None,
        "text": HOURS}
    assert 0 < source["score"] <= 1
    assert HOURS in fake_engine.prompts[0]
    knowledge = next(s for s in body["pml"]["context"]["sections"] if s["name"] == "knowledge")
    assert (knowledge["kept"], knowledge["dropped"]) == (1, 0)


def test_pml_knowledge_searches_a_base_the_build_does_not_name(client, fake_engine, tmp_path):
    town_base(tmp_path)
    body = chat(client, "When does the post office open?", pml={"knowledge": ["town"]}).json()
    assert [s["document"] for s in body["pml"]["sources"]] == ["hours.md"]
    assert chat(client, "When?").json()["pml"]["sources"] == []


def test_the_context_is_the_prompt_the_engine_received(client, fake_engine):
    BuildStore().save("b", Build.model_validate({"from": "tiny", "system": "Be brief.", "pinned": ["It rains."]}))
    body = chat(client, "Hi", model="b").json()
    context = body["pml"]["context"]
    assert context["total_tokens"] == body["usage"]["prompt_tokens"] == len(fake_engine.prompt_ids[0])
    assert sum(s["tokens"] for s in context["sections"]) == context["total_tokens"]
    assert [s["name"] for s in context["sections"]] == ["system", "styles", "pinned", "few-shot", "recalled",
                                                        "knowledge", "history", "message", "template"]
    assert [s["kept"] for s in context["sections"][:3]] == [1, 0, 1]
    assert (context["kept_turns"], context["left_out_turns"]) == ([], [])
    assert body["pml"]["session"] is None and body["pml"]["turn"] is None


def test_turns_the_session_window_leaves_out_are_listed(client, fake_engine):
    long = " ".join(f"w{i}x" for i in range(30))  # about 110 tokens
    for n in range(3):
        fake_engine.replies.append(long)
        assert chat(client, f"question {n} {long}", pml={"session": "desk"}).status_code == 200
    body = chat(client, "last", pml={"session": "desk", "num_ctx": 500}).json()
    context = body["pml"]["context"]
    assert (context["left_out_turns"], context["kept_turns"]) == ([0, 1], [2])  # the oldest go first
    history = next(s for s in context["sections"] if s["name"] == "history")
    assert (history["kept"], history["dropped"]) == (len(context["kept_turns"]), len(context["left_out_turns"]))


def test_a_stream_carries_the_report_on_its_finish_chunk(client, fake_engine):
    fake_engine.replies.append("one two")
    events = sse_events(chat(client, stream=True, pml={"session": "desk"}))
    chunks = [json.loads(e) for e in events[:-1]]
    assert ["pml" in c for c in chunks] == [False, False, False, True]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert (chunks[-1]["pml"]["session"], chunks[-1]["pml"]["turn"]) == ("desk", 0)
    assert chunks[-1]["pml"]["context"]["total_tokens"] == len(fake_engine.prompt_ids[0])
