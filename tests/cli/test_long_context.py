"""Longer contexts from the command line: builds with rope_scaling, `pml eval ppl
--num-ctx`, and the bad inputs they refuse (one line, exit 2, nothing written)."""

import math

import pytest

from cli_run import assert_one_line_error, pml
from rope_reference import hf_token_losses

TEXT = " ".join(["The post office opens at 9am and closes at 5pm, the pool at noon."] * 40)


@pytest.mark.parametrize("parameters, fragment", [
    ("{rope_scaling: {type: yarn, factor: 0.5}}", "'parameters.rope_scaling.factor': Input should be greater than "
                                                  "or equal to 1"),
    ("{rope_scaling: {type: ntk, factor: 2}}", "'parameters.rope_scaling.type': Input should be 'linear', "
                                               "'dynamic' or 'yarn'"),
    ("{rope_scaling: {type: linear, factor: 2, beta_fast: 8}}", "beta_fast applies to rope_scaling type yarn only"),
    ("{num_ctx: 1025, rope_scaling: {type: yarn, factor: 2}}",
     "num_ctx 1025 exceeds tiny's context length 512 × rope_scaling factor 2 = 1024"),
    ("{num_ctx: 513}", "num_ctx 513 exceeds tiny's context length 512 (parameters.rope_scaling can stretch it)"),
])
def test_create_refuses_bad_rope_scaling_and_writes_nothing(pml_home, stored_tiny, tmp_path, parameters, fragment):
    build = tmp_path / "b.yml"
    build.write_text(f"from: tiny\nparameters: {parameters}\n")
    assert_one_line_error(pml("create", "b", "-f", str(build), home=pml_home), fragment)
    assert not (pml_home / "builds" / "b.yml").exists()


def test_a_build_may_reach_factor_times_the_trained_length(pml_home, stored_tiny, tmp_path):
    from pimpmyllama.chat.opening import open_build
    from pimpmyllama.prompting.refs import resolve_build

    build = tmp_path / "b.yml"
    build.write_text("from: tiny\nparameters: {num_ctx: 1024, rope_scaling: {type: yarn, factor: 2}}\n")
    result = pml("create", "long", "-f", str(build), home=pml_home)
    assert result.returncode == 0, result.stderr
    stages = []
    conversation = open_build(resolve_build("build:long").build, lambda stage, done, total: stages.append(stage))
    assert conversation.engine.context_length == 1024 and conversation.parameters.num_ctx == 1024
    # stated before the weights load: 2 layers × 2 kv heads × head_dim 16 × 4 bytes, keys and values
    assert conversation.engine.kv_cache.bytes == 2 * 2 * 2 * 16 * 4 * 1024
    assert stages[-1].startswith("KV cache for num_ctx 1024: 0.5 MiB (keys and values × 2 layers × 2 kv heads")
    assert conversation.engine.backend.spec.rope["rope_type"] == "yarn"


def test_ask_on_a_stretched_build_states_its_kv_cache_for_good(pml_home, stored_tiny, tmp_path):
    build = tmp_path / "b.yml"
    build.write_text("from: tiny\nparameters: {num_ctx: 1024, max_new_tokens: 4, rope_scaling: {type: yarn, factor: 2}}\n")
    assert pml("create", "long", "-f", str(build), home=pml_home).returncode == 0
    result = pml("ask", "long", "hello", home=pml_home)
    assert result.returncode == 0, result.stderr
    assert "KV cache for num_ctx 1024: 0.5 MiB (keys and values × 2 layers × 2 kv heads × head_dim 16 × 4 bytes)" \
        in result.stderr
    # a build that does not stretch its context says nothing of it
    plain = pml("ask", "tiny", "hello", home=pml_home)
    assert plain.returncode == 0 and "KV cache" not in plain.stderr


def test_a_kv_cache_that_does_not_fit_is_refused_with_its_numbers(pml_home, tiny_model, monkeypatch):
    from pimpmyllama.errors import InvalidInputError
    from pimpmyllama.generation import kv_memory
    from pimpmyllama.generation.engine import Engine

    monkeypatch.setattr(kv_memory, "available_memory", lambda: 100_000)
    with pytest.raises(InvalidInputError, match=r"^KV cache for num_ctx 512: 0\.2 MiB .* does not fit: 0\.00 GiB "
                                                r"of memory is available; lower num_ctx$"):
        Engine.load("tiny", tiny_model, precision="fp32", num_ctx=512)
    assert Engine.load("tiny", tiny_model, precision="fp32", num_ctx=128).kv_cache.bytes == 2 * 2 * 2 * 16 * 4 * 128


@pytest.mark.parametrize("options, fragment", [
    (["--num-ctx", "64", "--rope-scaling", "yarn", "--rope-factor", "0.5"],
     "--rope-scaling: 'factor': Input should be greater than or equal to 1"),
    (["--num-ctx", "64", "--rope-scaling", "ntk", "--rope-factor", "2"],
     "--rope-scaling: 'type': Input should be 'linear', 'dynamic' or 'yarn'"),
    (["--num-ctx", "1100", "--rope-scaling", "dynamic", "--rope-factor", "2"],
     "num_ctx 1100 exceeds tiny's context length 512 × rope_scaling factor 2 = 1024"),
    (["--num-ctx", "600"], "num_ctx 600 exceeds tiny's context length 512"),
    (["--num-ctx", "64", "--rope-scaling", "yarn"], "--rope-scaling and --rope-factor go together"),
    (["--rope-scaling", "yarn", "--rope-factor", "2"], "need --num-ctx"),
    (["--num-ctx", "400000000", "--rope-scaling", "yarn", "--rope-factor", "1000000"],
     "KV cache for num_ctx 400000000: 195,312.5 MiB (keys and values × 2 layers × 2 kv heads × head_dim 16 × 4 bytes) "
     "does not fit"),
])
def test_eval_ppl_refuses_bad_long_context_options(pml_home, stored_tiny, tmp_path, options, fragment):
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    assert_one_line_error(pml("eval", "ppl", "tiny", str(text), *options, home=pml_home), fragment)


def test_eval_ppl_scores_non_overlapping_windows_with_the_scaling(pml_home, stored_tiny, tiny_model, tmp_path):
    from pimpmyllama.prompting.tokenizer import Tokenizer

    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    result = pml("eval", "ppl", "tiny", str(text), "--num-ctx", "590", "--rope-scaling", "yarn",
                 "--rope-factor", "2", "--precision", "fp32", "--windows", "1", home=pml_home)
    assert result.returncode == 0, result.stderr
    ids = Tokenizer(tiny_model).encode(TEXT)
    assert len(ids) >= 1180  # two windows' worth: --windows 1 scored only the first
    expected = math.exp(float(hf_token_losses(tiny_model, {"type": "yarn", "factor": 2.0}, ids[:590]).mean()))
    assert result.stdout.strip() == (f"perplexity {expected:.3f} over 589 tokens (1 windows of 590, "
                                     "rope yarn × 2)")
    assert result.stderr.strip().splitlines()[0] == ("KV cache for num_ctx 590: 0.3 MiB (keys and values × 2 layers "
                                                     "× 2 kv heads × head_dim 16 × 4 bytes)")
