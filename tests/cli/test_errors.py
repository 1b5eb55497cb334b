"""Bad input: one line naming the problem, exit code 2, no traceback - as a user sees it."""

import subprocess
import sys

import pytest

from cli_run import assert_one_line_error, pml


@pytest.fixture
def home(stored_tiny, pml_home):
    return pml_home


def test_unknown_model_and_unknown_build(home):
    assert_one_line_error(pml("models", "show", "nope", home=home), "unknown model 'nope'", "known: tiny")
    assert_one_line_error(pml("ask", "nobuild", "hello", home=home), "unknown build or model 'nobuild'")
    assert_one_line_error(pml("chat", "nobuild", home=home), "unknown build or model 'nobuild'")


def test_a_typo_in_a_build(home, tmp_path):
    path = tmp_path / "b.yml"
    path.write_text("from: tiny\nparameters:\n  temprature: 0.2\n")
    assert_one_line_error(pml("create", "b", "-f", str(path), home=home), "unknown key 'parameters.temprature'")
    assert not (home / "builds" / "b.yml").exists()


def test_a_build_naming_a_missing_model(home, tmp_path):
    path = tmp_path / "b.yml"
    path.write_text("from: ghost\n")
    assert_one_line_error(pml("create", "b", "-f", str(path), home=home), "unknown model 'ghost'")


def test_missing_and_corrupt_model_files(home, tmp_path):
    assert_one_line_error(pml("models", "import", str(tmp_path / "nowhere"), home=home), "does not exist")
    weights = home / "models" / "tiny" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    assert_one_line_error(pml("ask", "tiny", "hello", home=home), "model.safetensors is not a readable safetensors file")
    weights.unlink()
    assert_one_line_error(pml("ask", "tiny", "hello", home=home), "holds no .safetensors weights")


def test_a_gguf_we_cannot_load(home, tmp_path):
    bogus = tmp_path / "m.gguf"
    bogus.write_bytes(b"GGUF" + b"\x00" * 100)
    assert_one_line_error(pml("models", "import", str(bogus), home=home), "m.gguf is not a readable GGUF file")


def test_a_message_longer_than_the_whole_context(home):
    result = pml("ask", "tiny", "hello " * 2000, home=home)
    # num_ctx defaults to the tiny model's 512, with a quarter kept for the reply
    assert_one_line_error(result, "the prompt needs", "only 384 fit (num_ctx 512 - max_new_tokens 128)")


def test_an_empty_question(home):
    assert_one_line_error(pml("ask", "tiny", "   ", home=home), "the question is empty")


def test_usage_errors_exit_2_too(home):
    result = pml("models", "import", home=home)
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_help_does_not_import_heavy_libraries():
    code = "import sys; import pimpmyllama.cli.main; print(sorted(m for m in ('torch', 'transformers', 'tokenizers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
