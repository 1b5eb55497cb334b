"""End to end on the real bundled default model (SmolLM2-135M-Instruct), kept short."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pimpmyllama.chat.conversation import Conversation
from pimpmyllama.generation.engine import Engine
from pimpmyllama.memory.sessions import SessionStore
from pimpmyllama.models.defaults import DEFAULT_MODEL
from pimpmyllama.prompting.build import Build
from pimpmyllama.storage.db import open_database

pytestmark = pytest.mark.e2e
EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def engine(default_model_home):
    return Engine.load(DEFAULT_MODEL, default_model_home / "models" / DEFAULT_MODEL)


def test_the_default_model_carries_its_recommended_sampling(engine):
    from pimpmyllama.models.defaults import DEFAULT_SAMPLING

    assert engine.sampling_defaults == DEFAULT_SAMPLING
    assert engine.context_length == 8192
    assert engine.tokenizer.end_token_ids == {0, 2}  # <|endoftext|>, <|im_end|>


def test_the_system_prompt_is_obeyed(engine):
    build = Build.model_validate({"system": "The post office opens at 9am.", "parameters": {"temperature": 0}})
    reply = Conversation(engine, build).send("When does the post office open?")
    text = reply.text()
    assert "9" in text, text
    assert reply.completion.finish_reason == "stop"


def test_a_long_session_in_a_small_window_keeps_its_system_prompt(engine, tmp_path):
    build = Build.model_validate(
        {
            "system": "You are the town hall's assistant. The post office opens at 9am.",
            "parameters": {"num_ctx": 512, "max_new_tokens": 16, "temperature": 0},
        }
    )
    store = SessionStore(open_database(tmp_path / "pml.db"))
    conv = Conversation(engine, build, sessions=store, session=store.create("long", None))
    topics = ["the weather", "a good book", "the park", "trains", "music", "bread", "the river", "cats"]
    for i in range(40):
        reply = conv.send(f"Tell me one short thing about {topics[i % len(topics)]}.")
        reply.text()
        assert reply.context.total_tokens <= 512 - 16
        assert reply.context.messages[0]["content"].startswith(build.system)
    assert store.get("long").window_start > 0  # older turns really left the window
    assert len(store.turns(store.get("long"))) == 40
    final = conv.send("When does the post office open?")
    assert "9" in final.text(), final.completion.text
    kept = final.context.kept_turns
    assert kept and kept == list(range(kept[0], 40))  # whole turns, the most recent ones


def test_pml_ask_with_the_example_build(default_model_home):
    env = {**os.environ, "PML_HOME": str(default_model_home)}
    create = subprocess.run([sys.executable, "-m", "pimpmyllama", "create", "town-hall", "-f",
                             str(EXAMPLES / "town-hall.yml")], env=env, capture_output=True, text=True)
    assert create.returncode == 0, create.stderr
    ask = subprocess.run([sys.executable, "-m", "pimpmyllama", "ask", "town-hall", "When does the post office open?"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert ask.returncode == 0, ask.stderr
    assert "9" in ask.stdout, ask.stdout
