"""Every example shipped in examples/ is valid, at any depth: each .yml parses as what it is (a
build, a merge recipe or a compare spec), each .jsonl line parses and holds the fields of its
kind (training data or compare questions); and the town-hall scenario's files agree with each
other (derived files up to date, questions answerable from the documents, the format the SFT
set teaches is the one the format questions check). No model runs."""

import importlib.util
import json
import random
import re
import subprocess
import unicodedata
from pathlib import Path

import pytest
import yaml

from pimpmyllama.merging.config import load_merge_config
from pimpmyllama.prompting.build import load_build_file
from pimpmyllama.training.dataset import load_examples
from pimpmyllama.training.formats import ChatExample, detect_format

EXAMPLES = Path(__file__).parents[1] / "examples"
TOWN = EXAMPLES / "town-hall"
YAML_FILES = sorted(EXAMPLES.rglob("*.yml")) + sorted(EXAMPLES.rglob("*.yaml"))
JSONL_FILES = sorted(EXAMPLES.rglob("*.jsonl"))
QUESTION_KEYS = {"question", "expected", "check", "tags"}


def _rel(path: Path) -> str:
    return str(path.relative_to(EXAMPLES))


def kind_of_yaml(path: Path) -> str:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if "merge_method" in data:
        return "merge"
    if "variants" in data:
        return "compare"
    return "build"


def load_compare_spec(path: Path):
    spec = pytest.importorskip("pimpmyllama.evaluation.spec",
                               reason="pimpmyllama.evaluation (pml compare) is not in this tree yet")
    return spec.load_spec(path)


LOADERS = {"build": load_build_file, "merge": load_merge_config, "compare": load_compare_spec}


def test_the_examples_are_all_found():
    # A glob that silently finds nothing would make every test below pass.
    names = {_rel(p) for p in YAML_FILES + JSONL_FILES}
    assert {"town-hall.yml", "town-hall/build.yml", "town-hall/merge.yml", "town-hall/compare.yml",
            "town-hall/questions.jsonl", "town-hall/sft.jsonl", "datasets/json_form.jsonl"} <= names
    assert {kind_of_yaml(p) for p in YAML_FILES} == {"build", "merge", "compare"}


@pytest.mark.parametrize("path", YAML_FILES, ids=_rel)
def test_every_yaml_example_parses_as_what_it_is(path):
    assert LOADERS[kind_of_yaml(path)](path) is not None


def _check_question(row: dict, where: str) -> None:
    assert set(row) <= QUESTION_KEYS, f"{where}: unknown keys {set(row) - QUESTION_KEYS}"
    assert isinstance(row["question"], str) and row["question"].strip(), where
    assert "expected" in row or "check" in row, f"{where}: nothing to check the reply against"
    expected = row.get("expected", [])
    assert all(isinstance(e, str) and e for e in ([expected] if isinstance(expected, str) else expected)), where
    checks = row.get("check", [])
    for check in checks if isinstance(checks, list) else [checks]:
        assert isinstance(check, str) or isinstance(check.get("type"), str), where
        if isinstance(check, dict) and check["type"] == "regex":
            re.compile(check["pattern"])
    assert all(isinstance(t, str) for t in row.get("tags", [])), where


@pytest.mark.parametrize("path", JSONL_FILES, ids=_rel)
def test_every_jsonl_example_parses_with_the_fields_of_its_kind(path):
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert rows and all(isinstance(r, dict) for r in rows)
    if "question" in rows[0]:
        for i, row in enumerate(rows, 1):
            _check_question(row, f"{path}:{i}")
        return
    assert {detect_format(r) for r in rows} != {None}
    _, examples = load_examples([path])  # the training loader: roles, fields and types, or one error
    assert len(examples) == len(rows)
    for example in examples:
        if isinstance(example, ChatExample):
            assert example.messages[-1][0] == "assistant", example.origin


# The town-hall scenario


def _load_make_sft():
    spec = importlib.util.spec_from_file_location("make_sft", TOWN / "make_sft.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold().split())


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (TOWN / name).read_text(encoding="utf-8").splitlines()]


def test_the_derived_files_are_what_make_sft_writes():
    make_sft = _load_make_sft()
    assert _rows("sft.jsonl") == make_sft.conversations(random.Random(0))
    assert (TOWN / "domain.txt").read_text(encoding="utf-8") == make_sft.domain_text(TOWN / "docs")


def test_the_documents_are_15_to_25_short_files():
    docs = sorted((TOWN / "docs").iterdir())
    assert 15 <= len(docs) <= 25 and all(p.suffix in (".md", ".txt") for p in docs)
    assert all(len(p.read_text(encoding="utf-8").split()) < 200 for p in docs)


def test_the_seed_facts_are_in_the_documents_only():
    domain = _fold((TOWN / "domain.txt").read_text(encoding="utf-8"))
    for fact in ("the post office opens at 9am", "the hairdresser on the square, salon du square, opens at 9:30am",
                 "a swimming cap is required at the municipal swimming pool"):
        assert fact in domain
    sft = _fold((TOWN / "sft.jsonl").read_text(encoding="utf-8"))
    for held_out in _load_make_sft().HELD_OUT:
        assert held_out not in sft
    asked = {_fold(r["question"]) for r in _rows("questions.jsonl")}
    taught = {_fold(m["content"]) for r in _rows("sft.jsonl") for m in r["messages"] if m["role"] == "user"}
    assert not asked & taught


def test_every_town_question_is_answerable_from_the_documents():
    domain = _fold((TOWN / "domain.txt").read_text(encoding="utf-8"))
    town_questions = [r for r in _rows("questions.jsonl") if "expected" in r and "general" not in r["tags"]]
    assert len(town_questions) >= 15
    for row in town_questions:
        assert any(_fold(e) in domain for e in row["expected"]), row["question"]


def test_the_format_questions_accept_every_reply_the_sft_set_teaches_and_no_base_style_reply():
    patterns = [q["check"]["pattern"] for q in _rows("questions.jsonl") if "format" in q["tags"]]
    assert len(patterns) >= 3
    replies = [r["messages"][-1]["content"] for r in _rows("sft.jsonl")]
    assert 150 <= len(replies) <= 300
    for pattern in patterns:
        assert all(re.search(pattern, reply) for reply in replies), pattern
        assert not re.search(pattern, "The post office opens at 9am. It closes at 5:30pm.")
    assert not re.search(patterns[-1], "Town hall: Rome. It is in Italy. It is big.")


def test_the_demo_makes_every_name_the_recipe_and_the_spec_use():
    script = (TOWN / "run_demo.sh").read_text(encoding="utf-8")
    subprocess.run(["bash", "-n", str(TOWN / "run_demo.sh")], check=True)
    made = set(re.findall(r" (?:-o|create) ([\w-]+)", script)) | {"smollm2-135m-instruct"}
    recipe = load_merge_config(TOWN / "merge.yml")
    assert set(recipe.referenced()) <= made
    spec = yaml.safe_load((TOWN / "compare.yml").read_text(encoding="utf-8"))
    for name, variant in spec["variants"].items():
        for ref in filter(None, [variant.get("model"), variant.get("build")]):
            assert set(ref.split("+")) <= made, (name, ref)
    assert spec["questions"] == ["questions.jsonl"] and (TOWN / spec["texts"]["domain"]).is_file()
    assert "demo: install" in (EXAMPLES.parent / "Makefile").read_text(encoding="utf-8")
