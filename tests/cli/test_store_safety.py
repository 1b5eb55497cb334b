"""Issue-by-issue: names never escape the store, nothing is written before a request
is known to be valid, and each of these mistakes is one line (exit 2, no traceback)
with the state unchanged."""

import os

import pytest


def one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def victim(tmp_path):
    folder = tmp_path / "victim"
    (folder / "valid").mkdir(parents=True)
    (folder / "valid.yml").write_text("from: smollm2-135m-instruct\n")  # parses as a build
    (folder / "valid" / "config.json").write_text("{}")
    return folder


@pytest.mark.parametrize("command", [["models", "rm"], ["adapters", "rm"], ["builds", "rm"]])
def test_rm_never_deletes_outside_the_store(run, pml_home, victim, command):
    before = tree(victim)
    (pml_home / "builds").mkdir(parents=True, exist_ok=True)
    for ref in [str(victim), str(victim / "valid"), "../builds", "../../victim/valid", "a/b", "..", "."]:
        one_line_error(run(*command, ref), "invalid")
    assert tree(victim) == before
    assert (pml_home / "builds").is_dir()


def test_a_link_in_the_store_pointing_outside_is_never_followed(run, pml_home, victim, stored_tiny):
    (pml_home / "models" / "escape").symlink_to(victim / "valid")
    one_line_error(run("models", "show", "escape"), "link pointing outside the store")
    assert "escape" not in run("models", "list").output.split()
    assert run("models", "rm", "escape").exit_code == 0  # removes the link, not what it points to
    assert not (pml_home / "models" / "escape").exists() and (victim / "valid" / "config.json").exists()


@pytest.mark.parametrize("args, what", [
    (["create", "evil\n", "-f", "{build}"], "build"),
    (["models", "import", "{model}", "--name", "nl\n"], "model"),
    (["ask", "--session", "s1\n", "hi"], "session"),
    (["create", "a/b", "-f", "{build}"], "build"),
])
def test_names_with_control_characters_or_separators_are_refused(run, pml_home, tiny_model, tmp_path, args, what,
                                                                  fake_engine):
    build = tmp_path / "ok.yml"
    build.write_text(f"from: {tiny_model}\n")
    args = [a.format(build=build, model=tiny_model) for a in args]
    one_line_error(run(*args), f"invalid {what} name")
    assert not (pml_home / "builds").exists() or tree(pml_home / "builds") == []
    assert not (pml_home / "models").exists() or [n for n in tree(pml_home / "models") if n != ".lock"] == []


def test_train_checks_the_output_name_before_any_work(run, pml_home, tmp_path, stored_tiny):
    data = tmp_path / "data.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n')
    one_line_error(run("train", "sft", str(data), "--from", "tiny", "-o", "../../evil", "--max-steps", "1"),
                   "invalid adapter name '../../evil'")
    assert not (tmp_path / "evil").exists() and not (pml_home.parent / "evil").exists()
    assert tree(pml_home / "runs") == [] if (pml_home / "runs").exists() else True


@pytest.mark.parametrize("extra", [["--precision", "int3"], ["--kb", "nope"], ["--adapter", "nope"]])
def test_a_failed_ask_creates_no_session(run, pml_home, fake_engine, extra):
    from pimpmyllama.storage.db import open_database

    one_line_error(run("ask", "--session", "s9", *extra, "hi"))
    assert open_database().query("SELECT name FROM sessions") == []


def test_a_folder_that_is_not_a_model_is_flagged_in_the_listing(run, pml_home, stored_tiny):
    (pml_home / "models" / "junk").mkdir()
    result = run("models", "list")
    assert result.exit_code == 0, result.output
    junk = [line for line in result.output.splitlines() if line.strip().startswith("junk")]
    assert junk and "not usable" in junk[0]
    assert any(line.strip().startswith("tiny") and "llama" in line for line in result.output.splitlines())
    one_line_error(run("models", "show", "junk"), "not a model folder")
    one_line_error(run("models", "show", "/some/dir"), "invalid model name '/some/dir'")


@pytest.mark.parametrize("yaml_text, fragment", [
    ("from: {model}\nparameters: {{num_ctx: 100000}}\n", "num_ctx 100000 exceeds"),
    ("from: {model}\nparameters: {{num_ctx: 256, max_new_tokens: 256}}\n", "max_new_tokens 256 leaves no room"),
    ("from: {outside}\n", "is not a model folder"),
    ("from: {model}\ntemplate: '{{% if %}}'\n", "chat template does not parse"),
    ("from: {model}\nadapter: nope\n", "unknown adapter 'nope'"),
])
def test_create_refuses_builds_that_ask_would_refuse(run, pml_home, tiny_model, tmp_path, yaml_text, fragment):
    outside = tmp_path / "plain"
    outside.mkdir()
    build = tmp_path / "b.yml"
    build.write_text(yaml_text.format(model=tiny_model, outside=outside))
    one_line_error(run("create", "b", "-f", str(build)), fragment)
    assert not (pml_home / "builds" / "b.yml").exists()


def test_create_refuses_to_replace_a_build_unless_forced(run, pml_home, tiny_model, tmp_path):
    build = tmp_path / "b.yml"
    build.write_text(f"from: {tiny_model}\nsystem: one\n")
    assert run("create", "b", "-f", str(build)).exit_code == 0
    build.write_text(f"from: {tiny_model}\nsystem: two\n")
    one_line_error(run("create", "b", "-f", str(build)), "already exists")
    assert "one" in (pml_home / "builds" / "b.yml").read_text()
    assert run("create", "b", "-f", str(build), "--force").exit_code == 0
    assert "two" in (pml_home / "builds" / "b.yml").read_text()


def test_a_truncated_weights_file_is_named_as_the_user_gave_it(run, pml_home, tiny_model, tmp_path):
    import shutil

    copy = tmp_path / "cut"
    shutil.copytree(tiny_model, copy)
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    one_line_error(run("models", "import", str(copy), "--name", "cut"), f"{weights} is truncated")
    assert [n for n in tree(pml_home / "models") if n != ".lock"] == []


@pytest.mark.parametrize("command", [["builds", "list"], ["sessions", "list"], ["version"]])
def test_what_a_killed_writer_left_is_swept_by_any_command(run, pml_home, command):
    stale = [pml_home / "models" / ".tmp-999999-abcd1234-big", pml_home / "adapters" / ".tmp-999999-abcd-form"]
    for folder in stale:  # pid 999999: not running
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"half")
    alive = pml_home / "models" / f".tmp-{os.getpid()}-abcd1234-busy"  # a writer still at work: kept
    alive.mkdir()
    assert run(*command).exit_code == 0
    assert not any(folder.exists() for folder in stale) and alive.exists()


def test_a_corrupt_adapter_record_is_flagged_not_a_traceback(run, pml_home, store_world):
    (pml_home / "adapters" / "form" / "pml-adapter.json").write_text("{not json")
    result = run("adapters", "list")
    assert result.exit_code == 0 and "unreadable" in result.output, result.output
    one_line_error(run("adapters", "show", "form"), "pml-adapter.json is not valid JSON")
