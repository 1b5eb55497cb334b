import json

import pytest


def chat_records(n=40):
    return [{"messages": [{"role": "user", "content": f"what is {i} plus {i}?"},
                          {"role": "assistant", "content": f"{2 * i}"}]} for i in range(n)]


@pytest.fixture
def chat_data(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in chat_records()) + "\n")
    return path


@pytest.fixture
def train_config(stored_tiny, chat_data, short_text):
    """A tiny run's config; its general reference text is `short_text` unless a test names
    one (the default text's perplexity would take most of the run's time)."""
    from pimpmyllama.training.config import TrainConfig

    def make(**overrides):
        data = {"from": "tiny", "data": [str(chat_data)], "output": "t1", "max_steps": 4, "batch_size": 2,
                "max_length": 64, "save_steps": 2, "learning_rate": 1e-2, "eval_split": 0.1,
                "general_text": str(short_text)}
        data.update(overrides)
        return TrainConfig.model_validate(data)

    return make


@pytest.fixture
def short_text(tmp_path):
    """A few sentences as the general reference text: its perplexity takes a blink, where
    the default (CPython's LICENSE) takes most of a tiny run's time."""
    path = tmp_path / "general.txt"
    path.write_text("The post office opens at 9am and closes at 5pm. Yesterday evening I ate ravioli.\n" * 4)
    return path
