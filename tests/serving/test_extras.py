"""The `pml` request field: a session's history and storage, parameters, styles, and
what is refused (unknown keys, history beside a session)."""

from serve_client import chat

from pimpmyllama.memory.sessions import SessionStore
from pimpmyllama.storage.db import open_database


def turn_rows():
    return open_database().query("SELECT s.name, t.idx, t.user_message, t.reply, t.status FROM turns t "
                                 "JOIN sessions s ON s.id = t.session_id ORDER BY t.idx")


def test_a_session_request_uses_and_stores_the_session_history(client, fake_engine):
    fake_engine.replies.extend(["first answer", "second answer"])
    first = chat(client, "first question", pml={"session": "desk"})
    second = chat(client, "second question", pml={"session": "desk"})
    assert (first.status_code, second.status_code) == (200, 200)
    assert [r.json()["pml"]["session"] for r in (first, second)] == ["desk", "desk"]
    assert [r.json()["pml"]["turn"] for r in (first, second)] == [0, 1]
    prompt = fake_engine.prompts[1]
    order = [prompt.index(text) for text in ("first question", "first answer", "second question")]
    assert order == sorted(order)
    assert second.json()["pml"]["context"]["kept_turns"] == [0]
    assert turn_rows() == [
        {"name": "desk", "idx": 0, "user_message": "first question", "reply": "first answer", "status": "complete"},
        {"name": "desk", "idx": 1, "user_message": "second question", "reply": "second answer", "status": "complete"},
    ]
    assert SessionStore(open_database()).get("desk").build == "tiny"


def test_history_beside_a_session_is_refused_and_creates_nothing(client, fake_engine):
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "c"}]
    response = client.post("/v1/chat/completions", json={"model": "tiny", "messages": messages,
                                                          "pml": {"session": "desk"}})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"
    assert "with pml.session, send only the new user message" in response.json()["error"]["message"]
    assert SessionStore(open_database()).find("desk") is None
    assert fake_engine.prompts == []


def test_a_new_session_whose_turn_does_not_fit_is_not_created(client, fake_engine):
    response = chat(client, "word " * 400, pml={"session": "desk", "num_ctx": 64})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert SessionStore(open_database()).find("desk") is None


def test_a_bad_session_name_is_named(client):
    response = chat(client, pml={"session": "../x"})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "pml.session"
    assert "invalid session name '../x'" in response.json()["error"]["message"]


def test_unknown_keys_are_all_named(client):
    response = chat(client, pml={"session": "s", "mirostat": 2, "tfs_z": 1})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "pml"
    assert error["message"].startswith("pml: unsupported keys 'mirostat', 'tfs_z' (known: session, knowledge, ")


def test_parameters_reach_the_engine_and_the_context(client, fake_engine):
    response = chat(client, pml={"top_k": 7, "repeat_penalty": 1.3, "num_ctx": 300})
    assert response.status_code == 200
    sampling = fake_engine.params[0].sampling
    assert (sampling.top_k, sampling.repeat_penalty) == (7, 1.3)
    context = response.json()["pml"]["context"]
    assert (context["num_ctx"], context["max_new_tokens"], context["budget"]) == (300, 75, 225)


def test_bad_parameter_values_are_named(client):
    response = chat(client, pml={"num_ctx": 8})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "pml.num_ctx"


def test_styles_replace_the_builds_and_an_unknown_one_is_named(client, fake_engine):
    assert chat(client, pml={"styles": ["brief", {"expert": {"field": "law"}}]}).status_code == 200
    assert "Answer briefly, in one or two sentences." in fake_engine.prompts[0]
    assert "Answer as an expert in law would" in fake_engine.prompts[0]
    response = chat(client, pml={"styles": ["pirate"]})
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "pml.styles"
    assert "unknown style 'pirate'" in response.json()["error"]["message"]


def test_an_unknown_knowledge_base_is_named(client):
    response = chat(client, pml={"knowledge": ["nowhere"]})
    assert response.status_code == 404
    assert response.json()["error"]["param"] == "pml.knowledge"
    assert "unknown knowledge base 'nowhere'" in response.json()["error"]["message"]
