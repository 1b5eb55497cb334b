import json

import pytest

from fakes import FakeEngine, patch_load_engine


@pytest.fixture
def fake_engine(monkeypatch, tiny_model, stored_tiny):
    """Every variant loads this fake (one engine for all); queue replies on it."""
    return patch_load_engine(monkeypatch, FakeEngine(tiny_model))


@pytest.fixture
def write_spec(tmp_path):
    """write_spec(spec_yaml_text, questions=[...dicts or raw lines]) -> the spec's path."""

    def write(text: str, questions=None, name: str = "compare.yml"):
        if questions is not None:
            lines = [q if isinstance(q, str) else json.dumps(q) for q in questions]
            (tmp_path / "questions.jsonl").write_text("\n".join(lines) + "\n")
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
