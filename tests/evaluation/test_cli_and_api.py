"""`pml compare` as a user runs it, Ctrl-C included, and `pimpmyllama.compare` on the
real engine; the levers each variant is labelled with."""

import json

from typer.testing import CliRunner

from compare_data import QUESTIONS, SPEC


def test_the_command_prints_the_table_and_ctrl_c_leaves_a_partial_report(fake_engine, write_spec, tmp_path,
                                                                         monkeypatch):
    from pimpmyllama.cli.main import app

    spec = write_spec(SPEC, QUESTIONS)
    monkeypatch.chdir(tmp_path)
    fake_engine.replies.extend(["9am", ("Yes", KeyboardInterrupt())])
    stopped = CliRunner().invoke(app, ["compare", str(spec)])
    out = tmp_path / "compare-compare"  # the default folder: compare-SPEC, here
    assert stopped.exit_code == 130, stopped.output
    assert "interrupted: the partial report is in compare-compare" in stopped.stderr
    assert [json.loads(x)["reply"] for x in (out / "results.jsonl").read_text().splitlines()] == ["9am"]
    assert "**Partial**: 1 of 6 answers" in (out / "report.md").read_text()

    fake_engine.replies.extend(["No.", "Hello.", "9 h", "a cap", "Hi."])
    done = CliRunner().invoke(app, ["compare", str(spec)])
    assert done.exit_code == 0, done.output
    table = [line.split() for line in done.stdout.splitlines()]
    assert table[0][:4] == ["VARIANT", "LEVERS", "PASS", "95%"]
    assert table[1][:5] == ["base", "base", "50.0%", "9.5–90.5%", "100.0%"]
    assert table[2][:4] == ["prompted", "prompt", "100.0%", "34.2–100.0%"]
    assert "Partial" not in (out / "report.md").read_text()


def test_the_python_api_on_the_real_engine(stored_tiny, write_spec, tmp_path):
    import pimpmyllama as pml

    spec = write_spec("questions: questions.jsonl\nperplexity: false\nvariants:\n"
                      "  base: {model: tiny, precision: fp32, parameters: {max_new_tokens: 8}}\n", QUESTIONS[:2])
    results = pml.compare(spec, tmp_path / "out")
    first = results.rows[0]
    assert first.reply_tokens >= 1 and first.finish_reason in ("stop", "length")
    assert first.ttft_s > 0 and first.rss_mb > 50 and first.prompt_tokens == sum(first.context.values())
    assert results.variants[0].peak_rss_mb == max(r.rss_mb for r in results.rows)
    again = pml.compare(spec, tmp_path / "out")  # all cached: the same answers
    assert [r.reply for r in again.rows] == [r.reply for r in results.rows]


def test_levers_and_the_ablation_variants(store_world, write_spec):
    from pimpmyllama.evaluation.plan import make_plan

    spec = write_spec("questions: questions.jsonl\nperplexity: false\nvariants:\n"
                      "  base: {model: tiny}\n"
                      "  tuned: {model: tiny+form}\n"
                      "  stored: {build: b1}\n"
                      "  all: {extends: tuned, system: Be brief., pinned: [The pool needs a cap.]}\n"
                      "ablate: all\n", QUESTIONS)
    plan = make_plan(spec)
    assert {n: (v.levers, v.engine) for n, v in plan.variants.items()} == {
        "base": ([], "tiny"), "tuned": (["fine-tune"], "tiny"), "stored": (["prompt"], "tiny"),
        "all": (["prompt", "fine-tune"], "tiny"),
        "all-minus-prompt": (["fine-tune"], "tiny"), "all-minus-fine-tune": (["prompt"], "tiny"),
    }
    minus_tune = plan.variants["all-minus-fine-tune"].build
    assert (minus_tune.adapter, minus_tune.system, minus_tune.parameters.temperature) == (None, "Be brief.", 0)
    assert plan.pairs == [("base", "tuned"), ("base", "stored"), ("base", "all")]
    assert plan.total_answers == 6 * 3


def test_models_made_by_merging_are_labelled_and_ablated_back_to_their_base(store_world, write_spec, tmp_path):
    import pimpmyllama as pml
    from pimpmyllama.evaluation.plan import make_plan

    pml.merge_lora("tiny", "form", "baked")  # made_by merge-lora: a fine-tune, baked
    recipe = tmp_path / "merge.yml"
    recipe.write_text("merge_method: linear\nbase_model: tiny\nmodels:\n"
                      "  - {model: tiny, parameters: {weight: 0.5}}\n  - {model: tuned, parameters: {weight: 0.5}}\n")
    pml.merge(recipe, "merged")
    spec = write_spec("questions: questions.jsonl\nperplexity: false\nvariants:\n"
                      "  baked: {model: baked}\n  merged: {model: merged}\n"
                      "  all: {extends: merged, system: Be brief.}\nablate: all\n", QUESTIONS)
    plan = make_plan(spec)
    assert {n: (v.levers, v.engine) for n, v in plan.variants.items()} == {
        "baked": (["fine-tune"], "tiny"), "merged": (["merge"], "tiny"), "all": (["prompt", "merge"], "tiny"),
        "all-minus-prompt": (["merge"], "tiny"), "all-minus-merge": (["prompt"], "tiny"),
    }
    minus_merge = plan.variants["all-minus-merge"].build
    assert (minus_merge.from_, minus_merge.system) == ("tiny", "Be brief.")  # the merge's base, from its manifest
    assert plan.variants["all-minus-prompt"].build.from_ == "merged"
