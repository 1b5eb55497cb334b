"""POST /v1/chat/completions, not streamed: the reply, its usage, what reaches the engine."""

from serve_client import chat

from pimpmyllama.prompting.build import Build
from pimpmyllama.prompting.builds import BuildStore


def test_reply_and_usage(client, fake_engine):
    fake_engine.replies.append("Hello there friend")
    response = chat(client, "Hi")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "tiny"
    assert body["id"].startswith("chatcmpl-")
    assert body["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Hello there friend"},
                                "logprobs": None, "finish_reason": "stop"}]
    prompt_tokens = len(fake_engine.prompt_ids[0])
    assert prompt_tokens > 0
    # The fake sends one word per token.
    assert body["usage"] == {"prompt_tokens": prompt_tokens, "completion_tokens": 3,
                             "total_tokens": prompt_tokens + 3}


def test_request_parameters_reach_the_engine(client, fake_engine):
    chat(client, max_completion_tokens=7, temperature=0.2, top_p=0.5, seed=11, stop="END")
    chat(client, max_tokens=9, stop=["a", "b"], presence_penalty=-0.5, frequency_penalty=1.5)
    first, second = fake_engine.params
    assert (first.max_new_tokens, first.sampling.temperature, first.sampling.top_p, first.sampling.seed,
            first.stop) == (7, 0.2, 0.5, 11, ("END",))
    assert (first.sampling.presence_penalty, first.sampling.frequency_penalty) == (0.0, 0.0)
    assert (second.max_new_tokens, second.stop) == (9, ("a", "b"))
    assert (second.sampling.presence_penalty, second.sampling.frequency_penalty) == (-0.5, 1.5)
    response = chat(client, presence_penalty=2.5)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "presence_penalty"


def test_earlier_messages_are_the_history_and_system_overrides_the_build(client, fake_engine):
    BuildStore().save("b", Build.model_validate({"from": "tiny", "system": "BUILD PROMPT"}))
    messages = [{"role": "system", "content": "REQUEST PROMPT"},
                {"role": "user", "content": "first question"}, {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "second question"}]
    response = client.post("/v1/chat/completions", json={"model": "b", "messages": messages})
    assert response.status_code == 200
    prompt = fake_engine.prompts[0]
    assert "BUILD PROMPT" not in prompt
    order = [prompt.index(text) for text in ("REQUEST PROMPT", "first question", "first answer", "second question")]
    assert order == sorted(order)


def test_a_build_keeps_its_system_prompt_without_one_in_the_request(client, fake_engine):
    BuildStore().save("b", Build.model_validate({"from": "tiny", "system": "BUILD PROMPT"}))
    assert chat(client, model="b").status_code == 200
    assert "BUILD PROMPT" in fake_engine.prompts[0]
