"""One grammar of references, resolved in one place: every command that takes a model
gets the same model (and adapter) from the same text, or the same one-line error."""

import pytest

from pimpmyllama.errors import PmlError
from pimpmyllama.paths import adapters_dir, models_dir


def _chat(ref):
    from pimpmyllama.models.refs import resolve_model
    from pimpmyllama.prompting.refs import resolve_build

    build = resolve_build(ref).build
    resolved = resolve_model(build.from_, adapter=build.adapter)
    return resolved.folder, resolved.adapter


def _train(ref):
    from pimpmyllama.training.recipe import resolve_base

    return resolve_base(ref).folder, None


def _merge(ref):
    from pimpmyllama.merging.inputs import resolve_source

    source = resolve_source(ref)
    return source.folder, source.adapter


def _export(ref):
    from pimpmyllama.merging.export import export_target

    resolved = export_target(ref)
    return resolved.folder, resolved.adapter


def _eval(ref):
    from pimpmyllama.prompting.refs import resolve_model_of

    resolved = resolve_model_of(ref)
    return resolved.folder, resolved.adapter


COMMANDS = {"chat": _chat, "train": _train, "merge": _merge, "export": _export, "eval": _eval}


def outcome(fn, ref):
    try:
        return fn(ref)
    except PmlError as exc:
        return f"error: {exc}"


def _expected(store_world):
    tiny, form = models_dir() / "tiny", adapters_dir() / "form"
    folder = store_world["tiny_folder"]
    return {
        "tiny": (tiny, None),
        "model:tiny": (tiny, None),
        "tiny+form": (tiny, form),
        str(folder): (folder, None),
        f"{folder}+form": (folder, form),
        "b1": (tiny, None),
        "b1+form": (tiny, form),
        "build:b1": (tiny, None),
        str(store_world["build_file"]): (folder, None),
        "nope": "error: unknown build or model 'nope' (builds: b1; models: tiny, tuned)",
        "tiny+nope": "error: unknown adapter 'nope' (known: form)",
        "/no/such/folder": "error: /no/such/folder does not exist",
        "tiny+": "error: 'tiny+': write MODEL+ADAPTER with both parts",
    }


def test_every_command_resolves_a_reference_the_same_way(store_world):
    for ref, expected in _expected(store_world).items():
        for command, fn in COMMANDS.items():
            got = outcome(fn, ref)
            if command == "train" and isinstance(expected, tuple) and expected[1] is not None:
                # a training base cannot carry an adapter: one line says so
                assert got == f"error: {ref!r} has an adapter: train on a model, or merge the adapter first " \
                              "(`pml merge lora`)", (command, ref)
                continue
            assert got == expected, (command, ref, got)


def test_a_name_that_is_both_a_build_and_a_model_is_ambiguous(store_world):
    from pimpmyllama.prompting.build import Build
    from pimpmyllama.prompting.builds import BuildStore

    BuildStore().save("tiny", Build.model_validate({"from": "tuned"}))
    message = "error: 'tiny' is both a build and a model: write build:tiny or model:tiny"
    for command, fn in COMMANDS.items():
        assert outcome(fn, "tiny") == message, command
    assert _chat("build:tiny") == (models_dir() / "tuned", None)
    assert _chat("model:tiny") == (models_dir() / "tiny", None)


def test_chat_and_ask_take_model_plus_adapter(store_world, pml_home):
    """`pml ask MODEL+ADAPTER` runs the real engine with the adapter applied."""
    from cli_run import pml

    result = pml("ask", "tiny+form", "hello", "--json", home=pml_home)
    assert result.returncode == 0, result.stderr
    import json

    payload = json.loads(result.stdout)
    assert (payload["build"], payload["model"]) == ("tiny+form", "tiny+form")
    result = pml("chat", "tiny+form", home=pml_home, stdin="hello\n/exit\n")
    assert result.returncode == 0, result.stderr
    assert "tiny+form" in result.stdout


@pytest.mark.parametrize("ref", ["tiny+nope", "nope"])
def test_an_unknown_reference_is_one_line_from_the_cli(store_world, pml_home, ref):
    from cli_run import assert_one_line_error, pml

    expected = _expected(store_world)[ref].removeprefix("error: ")
    assert_one_line_error(pml("ask", ref, "hi", home=pml_home), expected)
    assert_one_line_error(pml("chat", ref, home=pml_home), expected)
