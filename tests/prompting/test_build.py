from pathlib import Path

import pytest

from pimpmyllama.errors import InvalidInputError
from pimpmyllama.models.defaults import DEFAULT_MODEL
from pimpmyllama.prompting.build import Build, load_build_file, parse_build
from pimpmyllama.prompting.builds import BuildStore

EXAMPLES = Path(__file__).parents[2] / "examples"


def all_example_builds():
    # Every build anywhere under examples/, however deep (not just the top folder).
    return sorted(p for p in EXAMPLES.rglob("*.yml") if "from:" in p.read_text())


@pytest.mark.parametrize("path", all_example_builds(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_build_is_valid(path):
    build = load_build_file(path)
    assert build.from_


def test_the_examples_include_the_town_hall_build():
    build = load_build_file(EXAMPLES / "town-hall.yml")
    assert "The post office opens at 9am." in build.pinned


def test_defaults_and_field_names():
    build = parse_build("system: hi\nparameters: {temperature: 0, stop: END}")
    assert build.from_ == DEFAULT_MODEL
    assert build.parameters.stop == ["END"]
    assert build.parameters.num_ctx == 2048 and build.parameters.max_new_tokens == 512


@pytest.mark.parametrize(
    "text, message",
    [
        ("systen: hi", "unknown key 'systen'"),
        ("parameters: {temprature: 0.5}", "unknown key 'parameters.temprature'"),
        ("parameters: {num_ctx: lots}", "'parameters.num_ctx': Input should be a valid integer"),
        ("parameters: {top_p: 2}", "'parameters.top_p': Input should be less than or equal to 1"),
        ("messages: [{role: robot, content: hi}]", "'messages.0.role': Input should be 'system', 'user' or 'assistant'"),
        ("- just\n- a list", "a build is a mapping of keys"),
        ("system: [unclosed", "not valid YAML (line 1)"),
    ],
)
def test_bad_builds_name_the_problem_in_one_line(text, message):
    with pytest.raises(InvalidInputError) as err:
        parse_build(text, "b.yml")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_relative_model_paths_are_relative_to_the_build_file(tmp_path):
    (tmp_path / "models" / "mine").mkdir(parents=True)
    (tmp_path / "builds").mkdir()
    path = tmp_path / "builds" / "b.yml"
    path.write_text("from: ../models/mine\n")
    assert load_build_file(path).from_ == str((tmp_path / "models" / "mine").resolve())


def test_store_round_trip_keeps_every_field(pml_home):
    build = Build.model_validate(
        {
            "from": "tiny",
            "system": "line one\nline two",
            "pinned": ["fact"],
            "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "parameters": {"num_ctx": 1024, "seed": 3, "stop": ["x"]},
        }
    )
    store = BuildStore()
    store.save("b1", build)
    assert store.get("b1") == build
    assert store.names() == ["b1"]
    assert "system: |" in store.text("b1")  # multi-line text stays readable
    store.remove("b1")
    assert store.names() == []


def test_defaults_fit_the_model_but_explicit_values_stay():
    default = parse_build("{}").parameters
    assert (default.for_model(8192).num_ctx, default.for_model(8192).max_new_tokens) == (2048, 512)
    assert (default.for_model(512).num_ctx, default.for_model(512).max_new_tokens) == (512, 128)
    explicit = parse_build("parameters: {num_ctx: 4096, max_new_tokens: 1000}").parameters.for_model(512)
    assert (explicit.num_ctx, explicit.max_new_tokens) == (4096, 1000)


def test_sampling_defaults_come_from_the_model_unless_the_build_sets_them():
    recommended = {"temperature": 0.2, "top_p": 0.5}
    p = parse_build("{}").parameters.for_model(2048, recommended)
    assert (p.temperature, p.top_p, p.top_k) == (0.2, 0.5, 40)
    p = parse_build("parameters: {temperature: 0.9}").parameters.for_model(2048, recommended)
    assert (p.temperature, p.top_p) == (0.9, 0.5)
