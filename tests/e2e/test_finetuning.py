"""Fine-tuning end to end on the real default model: learning to stop, and a form.
The full versions (more data, more prompts) are bench/finetune.py."""

import json
from pathlib import Path

import pytest

from pimpmyllama.generation.engine import Engine, GenerationParams
from pimpmyllama.generation.sampling import SamplingParams
from pimpmyllama.models.defaults import DEFAULT_MODEL
from pimpmyllama.training.config import TrainConfig
from pimpmyllama.training.recipe import train

pytestmark = pytest.mark.e2e
DATASETS = Path(__file__).parents[2] / "examples" / "datasets"
GREEDY = SamplingParams(temperature=0, repeat_penalty=1.0)


@pytest.fixture
def home(default_model_home, monkeypatch):
    monkeypatch.setenv("PML_HOME", str(default_model_home))
    return default_model_home


def engines(home, adapter):
    folder = home / "models" / DEFAULT_MODEL
    return Engine.load(DEFAULT_MODEL, folder), Engine.load(DEFAULT_MODEL, folder, home / "adapters" / adapter)


def split(path: Path, held: int, train_size: int | None, tmp: Path):
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    held_out, rest = rows[:held], rows[held:]
    data = tmp / path.name
    data.write_text("\n".join(json.dumps(r) for r in rest[:train_size]) + "\n")
    return held_out, data


def test_a_short_lora_sft_teaches_the_model_to_stop(home, tmp_path):
    held, data = split(DATASETS / "qa_completion.jsonl", 20, None, tmp_path)
    train(TrainConfig.model_validate({"data": [str(data)], "output": "e2e-stop", "epochs": 1, "max_length": 128,
                                      "learning_rate": 1e-3, "eval_split": 0.0, "save_steps": 10_000}))
    base, tuned = engines(home, "e2e-stop")

    def stops(engine):
        results = []
        for r in held:
            prompt = engine.tokenizer.encode(r["prompt"], add_special_tokens=True)
            c = engine.generate(prompt, GenerationParams(max_new_tokens=32, sampling=GREEDY), 512).run()
            results.append((c.finish_reason == "stop", c.usage.completion_tokens, c.text))
        return results

    before, after = stops(base), stops(tuned)
    rate = lambda rs: sum(s for s, _, _ in rs) / len(rs)  # noqa: E731
    print(f"stop rate before {rate(before):.2f}, after {rate(after):.2f}")
    assert rate(after) >= 0.9, after
    # ...and it stops right after the answer, as the data does
    assert sum(n for _, n, _ in after) / len(after) <= 6
    assert sum(n for _, n, _ in before) > 2 * sum(n for _, n, _ in after)


def test_sft_on_a_json_form_raises_the_valid_json_rate(home, tmp_path):
    held, data = split(DATASETS / "json_form.jsonl", 20, 120, tmp_path)
    train(TrainConfig.model_validate({"data": [str(data)], "output": "e2e-form", "epochs": 1, "max_length": 512,
                                      "learning_rate": 1e-3, "eval_split": 0.0, "save_steps": 10_000}))
    base, tuned = engines(home, "e2e-form")

    def valid(engine):
        ok = 0
        for r in held:
            prompt = engine.chat_format().encode([r["messages"][0]])
            text = engine.generate(prompt, GenerationParams(max_new_tokens=48, sampling=GREEDY), 512).run().text
            try:
                ok += isinstance(json.loads(text), dict)
            except json.JSONDecodeError:
                pass
        return ok / len(held)

    before, after = valid(base), valid(tuned)
    print(f"valid JSON rate before {before:.2f}, after {after:.2f}")
    assert after >= 0.8 and after >= before + 0.5
