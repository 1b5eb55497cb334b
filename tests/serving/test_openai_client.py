"""The official `openai` client against a real server process (uvicorn, an API key,
a store holding the tiny model): what a client sees, fields and errors alike."""

import json
import re

import jsonschema
import pytest
from serve_client import serve_in_process

openai = pytest.importorskip("openai")

KEY = "test-key"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 10},
                                           "people": {"type": "integer", "minimum": 0, "maximum": 999}},
          "required": ["city", "people"], "additionalProperties": False}




@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_model):
    home = tmp_path_factory.mktemp("pml-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PML_HOME", str(home))
        from pimpmyllama.models.store import ModelStore
        from pimpmyllama.prompting.build import Build
        from pimpmyllama.prompting.builds import BuildStore

        ModelStore().import_model(tiny_model, "tiny")
        # no repeat penalty: a greedy reply is then the argmax at every step
        BuildStore().save("plain", Build.model_validate({"from": "tiny", "parameters": {"repeat_penalty": 1.0}}))
    with serve_in_process(home, f"api_key={KEY!r}") as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0)


def ask(client, content="Tell me a story", **fields):
    return client.chat.completions.create(model="plain", messages=[{"role": "user", "content": content}], **fields)


def test_chat_and_its_stream_with_usage_in_the_last_chunk(client):
    reply = ask(client, max_tokens=12, temperature=0)
    assert reply.object == "chat.completion" and reply.choices[0].message.role == "assistant"
    assert reply.usage.completion_tokens <= 12 and reply.usage.prompt_tokens > 0
    chunks = list(ask(client, max_tokens=12, temperature=0, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.usage is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.choices == []
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert last.usage.prompt_tokens == reply.usage.prompt_tokens
    assert 0 < last.usage.completion_tokens <= 12 and text


def test_stop_strings_end_the_reply_unseen(client):
    ask(client, max_tokens=24, temperature=0)  # the prompt's cache warm: later replies are the same
    text = ask(client, max_tokens=24, temperature=0).choices[0].message.content
    stop = re.search("[A-Za-z]{2}", text[1:]).group()
    cut = ask(client, max_tokens=24, temperature=0, stop=[stop])
    assert cut.choices[0].message.content == text[: text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"
    streamed = ask(client, max_tokens=24, temperature=0, stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == text[: text.index(stop)]


def test_logprobs_greedy_tokens_are_the_top_ones_and_streamed_the_same(client):
    ask(client, max_tokens=8, temperature=0, logprobs=True, top_logprobs=3)
    reply = ask(client, max_tokens=8, temperature=0, logprobs=True, top_logprobs=3)
    entries = reply.choices[0].logprobs.content
    assert len(entries) == reply.usage.completion_tokens
    for entry in entries:
        tops = [t.logprob for t in entry.top_logprobs]
        assert len(tops) == 3 and tops == sorted(tops, reverse=True)
        assert (entry.top_logprobs[0].token, entry.top_logprobs[0].logprob) == (entry.token, entry.logprob)
        assert entry.logprob <= 0
    content = reply.choices[0].message.content
    assert b"".join(bytes(e.bytes) for e in entries).decode("utf-8", errors="replace") == content
    streamed = [c for c in ask(client, max_tokens=8, temperature=0, logprobs=True, top_logprobs=3, stream=True)
                if c.choices and c.choices[0].logprobs]
    assert [(e.token, e.logprob) for c in streamed for e in c.choices[0].logprobs.content] == \
           [(e.token, e.logprob) for e in entries]
    assert ask(client, max_tokens=4).choices[0].logprobs is None


def test_json_schema_replies_validate(client):
    response_format = {"type": "json_schema", "json_schema": {"name": "town", "schema": SCHEMA, "strict": True}}
    for seed in range(10):
        reply = ask(client, "A town as JSON", max_tokens=100, temperature=1, seed=seed, response_format=response_format)
        assert reply.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(reply.choices[0].message.content), SCHEMA)
    with pytest.raises(openai.BadRequestError) as bad:
        ask(client, response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "nope"}}})
    assert bad.value.body["param"] == "response_format"


def test_completions_echo_the_prompts_log_probs(client, tiny_model):
    from pimpmyllama.generation.engine import Engine

    engine = Engine.load("tiny", tiny_model)
    ids = engine.tokenizer.encode("the cat sat on the mat")
    scored = client.completions.create(model="tiny", prompt=ids, max_tokens=0, echo=True, logprobs=1, temperature=0)
    choice = scored.choices[0]
    assert choice.text == engine.tokenizer.decode(ids)
    assert choice.logprobs.token_logprobs[0] is None and choice.logprobs.top_logprobs[0] is None
    expected = engine.prompt_logprobs(ids, 1)
    assert choice.logprobs.token_logprobs[1:] == pytest.approx([e.logprob for e in expected[1:]], abs=1e-4)
    assert all(max(top.values()) >= lp for top, lp in zip(choice.logprobs.top_logprobs[1:],
                                                          choice.logprobs.token_logprobs[1:]))
    assert choice.logprobs.text_offset[0] == 0 and scored.usage.prompt_tokens == len(ids)
    # lm-evaluation-harness's request: one token more, sliced off by the client
    harness = client.completions.create(model="tiny", prompt=[ids], max_tokens=1, echo=True, logprobs=1, temperature=0)
    assert harness.choices[0].logprobs.token_logprobs[: len(ids)] == choice.logprobs.token_logprobs
    text = client.completions.create(model="tiny", prompt="Once upon", max_tokens=5, temperature=0)
    assert text.object == "text_completion" and text.usage.completion_tokens <= 5
    pieces = list(client.completions.create(model="tiny", prompt="Once upon", max_tokens=5, temperature=0,
                                            stream=True))
    assert "".join(p.choices[0].text for p in pieces) == text.choices[0].text


def test_embeddings_of_the_bundled_embedder(client):
    out = client.embeddings.create(model="all-minilm-l6-v2", input=["the post office", "opening hours"])
    assert [d.index for d in out.data] == [0, 1] and len(out.data[0].embedding) == 384
    assert sum(x * x for x in out.data[0].embedding) == pytest.approx(1.0, abs=1e-4)
    assert out.usage.prompt_tokens > 0
    as_floats = client.embeddings.create(model="all-minilm-l6-v2", input="the post office", encoding_format="float")
    assert as_floats.data[0].embedding == pytest.approx(out.data[0].embedding, abs=1e-6)
    with pytest.raises(openai.NotFoundError, match="unknown embedding model 'nope'"):
        client.embeddings.create(model="nope", input="x")
    with pytest.raises(openai.BadRequestError, match="non-empty"):
        client.embeddings.create(model="all-minilm-l6-v2", input=[])


def test_errors_arrive_as_the_clients_exceptions_with_our_messages(client, server):
    with pytest.raises(openai.NotFoundError, match="nope"):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="unsupported field 'logit_bias'"):
        ask(client, logit_bias={"1": 2})
    with pytest.raises(openai.AuthenticationError, match="API key"):
        openai.OpenAI(base_url=f"{server}/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(openai.BadRequestError) as chat_overflow:
        ask(client, "word " * 3000)
    numbers = [int(n) for n in re.findall(r"\d+", chat_overflow.value.body["message"])]
    assert any(n > 3000 for n in numbers) and 512 in numbers, chat_overflow.value.body["message"]
    with pytest.raises(openai.BadRequestError) as overflow:
        client.completions.create(model="tiny", prompt="word " * 3000, max_tokens=10)
    message = overflow.value.body["message"]
    assert re.search(r"the prompt has \d{4} tokens and max_tokens is 10, but the context size is 512", message)
