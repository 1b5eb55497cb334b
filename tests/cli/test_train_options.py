"""`pml train sft|pretrain`: every TrainConfig field is an option with its help text,
and the options given become exactly the config's values, over a --config file."""

import re

import pytest

import pimpmyllama.training.recipe as recipe
from pimpmyllama.training.config import TrainConfig
from pimpmyllama.training.recipe import TrainResult

ON_THE_COMMAND_LINE = set(TrainConfig.model_fields) - {"kind", "data"}


def _option_lines(help_text: str) -> dict[str, str]:
    """option field name (as given to typer) -> its help text, from --help's Options section."""
    options = help_text.split("Options:", 1)[1]
    entries = re.split(r"\n  (?=-)", "\n" + options)
    return {e.split()[0].rstrip(","): " ".join(e.split()) for e in entries if e.strip().startswith("-")}


@pytest.mark.parametrize("command", ["sft", "pretrain"])
def test_every_field_is_an_option_with_help(run, command):
    result = run("train", command, "--help")
    assert result.exit_code == 0, result.output
    lines = _option_lines(result.output)
    from pimpmyllama.cli.train import TRAIN_OPTIONS

    assert {o.field for o in TRAIN_OPTIONS} == ON_THE_COMMAND_LINE
    expected_first_flags = ["--from", "-o", "--force", "--full", "--epochs", "--max-steps", "--lr", "--scheduler",
                            "--warmup-ratio", "--batch-size", "--grad-accum", "--max-length", "--packing",
                            "--lora-rank", "--lora-alpha", "--lora-dropout", "--lora-targets", "--weight-decay",
                            "--max-grad-norm", "--eval-split", "--general-text", "--seed", "--save-steps",
                            "--log-steps"]
    for flag in expected_first_flags:
        assert flag in lines, flag
        # the flag, its metavar or pair, then words of help
        assert len(lines[flag].split()) >= 4, lines[flag]
    assert "[default: 42]" in lines["--seed"]
    assert "decay after warmup (cosine, linear, constant) [default: cosine]" in lines["--scheduler"]
    assert "--no-packing" in lines["--packing"]
    if command == "pretrain":
        assert "--num-ctx" in lines["--max-length"] and "block size" in lines["--max-length"]


@pytest.fixture
def captured(monkeypatch, pml_home):
    configs = []

    def fake_train(config, resume=False, on_step=None):
        configs.append((config, resume))
        return TrainResult(config.output, "adapter", 0, {"before": {"domain": None, "general": None},
                                                         "after": {"domain": None, "general": None},
                                                         "examples": 0, "dropped_too_long": 0})

    monkeypatch.setattr(recipe, "train", fake_train)
    return configs


def test_options_become_the_config_over_the_file(run, captured, tmp_path):
    config_file = tmp_path / "run.yml"
    config_file.write_text("output: from-file\nepochs: 5\nlora_rank: 4\nseed: 7\n")
    result = run("train", "sft", "a.jsonl", "b.jsonl", "--config", str(config_file), "-o", "given", "--full",
                 "--lr", "0.5", "--scheduler", "linear", "--grad-accum", "3", "--no-packing",
                 "--lora-targets", "q_proj, v_proj", "--general-text", "g.txt", "--weight-decay", "0.1",
                 "--log-steps", "5")
    assert result.exit_code == 0, result.output
    [(config, resume)] = captured
    assert resume is False
    assert config.model_dump() == TrainConfig.model_validate({
        "kind": "sft", "data": ["a.jsonl", "b.jsonl"], "output": "given", "epochs": 5, "lora_rank": 4, "seed": 7,
        "method": "full", "learning_rate": 0.5, "lr_scheduler": "linear", "gradient_accumulation": 3,
        "packing": False, "lora_targets": ["q_proj", "v_proj"], "general_text": "g.txt", "weight_decay": 0.1,
        "log_steps": 5,
    }).model_dump()


def test_pretrain_num_ctx_and_defaults(run, captured):
    result = run("train", "pretrain", "notes.md", "-o", "n", "--num-ctx", "128", "--lora")
    assert result.exit_code == 0, result.output
    [(config, _)] = captured
    assert (config.kind, config.max_length, config.method, config.learning_rate) == ("pretrain", 128, "lora", 2e-4)
    assert config.model_dump(exclude={"kind", "data", "output", "max_length"}) == \
        TrainConfig(output="x").model_dump(exclude={"kind", "data", "output", "max_length"})


def test_a_bad_choice_is_one_line(run, captured):
    result = run("train", "sft", "a.jsonl", "-o", "x", "--scheduler", "cosin")
    assert result.exit_code == 2
    assert captured == []
    assert "lr_scheduler" in result.output and "'cosine', 'linear' or 'constant'" in result.output


def test_pml_help_does_not_load_the_training_options():
    import subprocess
    import sys

    code = ("import sys; from typer.testing import CliRunner; from pimpmyllama.cli.main import app; "
            "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0 and 'Fine-tune a model' in r.output; "
            "print(sorted(m for m in ('pimpmyllama.cli.train', 'pimpmyllama.training.config') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("text, message", [
    (None, "does not exist"),
    ("epochs: [1\n", "not valid YAML (line 2)"),
    ("- 1\n", "a training config is a mapping of keys"),
    ("epocs: 1\n", "unknown key 'epocs'"),
])
def test_a_bad_config_file_is_one_line(run, captured, tmp_path, text, message):
    path = tmp_path / "run.yml"
    if text is not None:
        path.write_text(text)
    result = run("train", "sft", "a.jsonl", "-o", "x", "--config", str(path))
    assert result.exit_code == 2 and captured == []
    assert result.output.strip().splitlines() == [f"error: {path}{'' if text is None else ':'} {message}"]
