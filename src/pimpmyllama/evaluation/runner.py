"""Running a comparison: every variant × question × seed not yet cached is asked,
appended to `DIR/results.jsonl` as soon as it is answered, and the reports are
written from the cache. Re-running computes only what is missing (a new variant,
new questions, a variant whose model, adapter, build or knowledge changed).

Verdicts are recomputed from the stored replies on every run, so editing a
question's `expected` or `check` re-checks without asking the model again. At the
end of a run `results.jsonl` is rewritten (atomically) with this spec's rows only.
"""

import gc
import hashlib
from collections.abc import Callable
from pathlib import Path

from pimpmyllama.chat.opening import load_build_engine, open_build
from pimpmyllama.errors import PmlError
from pimpmyllama.evaluation.cache import JsonlCache
from pimpmyllama.evaluation.checks import Answer, run_checks
from pimpmyllama.evaluation.fingerprint import judge_fingerprint, model_fingerprint, variant_fingerprint
from pimpmyllama.evaluation.judge import THRESHOLD, Judge, agreement, prompt_key, ranking_auc
from pimpmyllama.evaluation.plan import Plan, make_plan
from pimpmyllama.evaluation.questions import Question
from pimpmyllama.evaluation.report import write_reports
from pimpmyllama.evaluation.results import ComparisonResults, Row, row_key, summarize
from pimpmyllama.evaluation.rss import peak_rss_mb, reset_peak
from pimpmyllama.evaluation.stats import ablation, flips
from pimpmyllama.evaluation.variants import Variant
from pimpmyllama.models.refs import MODEL_PREFIX, is_path
from pimpmyllama.progress import Progress, no_progress
from pimpmyllama.training.perplexity import model_perplexity

RESULTS = "results.jsonl"
PERPLEXITY = "perplexity.jsonl"
JUDGED = "judge.jsonl"


def default_output(spec: Path) -> Path:
    """Where a spec's reports go unless told: compare-SPEC in the current folder."""
    return Path(f"compare-{spec.stem}")


def _ppl_key(line: dict) -> tuple:
    return (line["model"], line["text"])


def _judged_key(line: dict) -> tuple:
    return (line["judge"], line["prompt"])


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def ask(conversation, variant: Variant, fingerprint: str, question: Question, seed: int) -> Row:
    """One answer, measured; a question that cannot be asked (it does not fit the
    variant's window) is a row with `error`, not the end of the run."""
    if conversation.parameters.temperature > 0:
        conversation.parameters = conversation.parameters.model_copy(update={"seed": seed})
    row = Row(variant.name, fingerprint, question.id, question.text, seed, reply="", finish_reason="error",
              reply_tokens=0, prompt_tokens=0, ttft_s=0.0, tokens_per_s=0.0, tags=list(question.tags))
    try:
        reply = conversation.send(question.text)
        text = reply.text()
    except PmlError as exc:
        row.error = str(exc)
        return row
    usage = reply.completion.usage
    knowledge = reply.context.knowledge
    row.reply, row.finish_reason = text, reply.completion.finish_reason
    row.reply_tokens, row.prompt_tokens = usage.completion_tokens, usage.prompt_tokens
    row.ttft_s, row.tokens_per_s = round(usage.prefill_seconds, 4), round(usage.tokens_per_second, 2)
    row.context = {s.name: s.tokens for s in reply.context.sections}
    row.passages = [p.source for p in knowledge]
    row.cited = [p.source for n, p in enumerate(knowledge, start=1) if f"[{n}]" in text]
    row.rss_mb = peak_rss_mb()
    return row


def check_row(row: Row, question: Question) -> Row:
    if row.error is not None:
        row.verdicts = [{"check": "asked", "passed": False, "detail": row.error}] if question.checks else []
        row.passed = False if question.checks else None
        return row
    verdicts = run_checks(question.checks, Answer(row.reply, row.finish_reason, row.reply_tokens), question.expected)
    row.verdicts = [{"check": v.check, "passed": v.passed, "detail": v.detail} for v in verdicts]
    row.passed = all(v.passed for v in verdicts) if verdicts else None
    return row


def _measure_perplexity(variant: Variant, texts: dict[str, Path], cache: JsonlCache) -> None:

    model = model_fingerprint(variant.build)
    for kind, path in texts.items():
        key = (model, _file_hash(path))
        if key in cache:
            continue
        value, tokens = model_perplexity(_model_ref(variant.build.from_), [path], adapter=variant.build.adapter)
        cache.append({"model": key[0], "text": key[1], "kind": kind, "path": str(path),
                      "perplexity": value, "tokens": tokens})


def _model_ref(name: str) -> str:

    return name if is_path(name) else MODEL_PREFIX + name


def _open(variant: Variant, progress: Progress):

    return open_build(variant.build, lambda stage, done, total: progress(f"{variant.name}: {stage}", done, total))


def _judge_fingerprint(plan: Plan) -> str | None:
    return None if plan.spec.judge is None else judge_fingerprint(plan.variants[plan.spec.judge].build)


def _replies_to_judge(plan: Plan, fingerprints: dict[str, str], answers: JsonlCache):
    """(question, reply) of every answered row of the plan."""
    for name, variant in plan.variants.items():
        for question in plan.questions:
            for seed in plan.seeds(variant):
                line = answers.get((fingerprints[name], question.id, seed))
                if line is not None and line.get("error") is None:
                    yield question, line["reply"]


def _judge(plan: Plan, fingerprints: dict[str, str], answers: JsonlCache, judged: JsonlCache,
           progress: Progress) -> None:
    """Every reply not yet graded, graded by the spec's judge (loaded once)."""
    fingerprint = _judge_fingerprint(plan)
    todo = {}
    for question, reply in _replies_to_judge(plan, fingerprints, answers):
        key = (fingerprint, prompt_key(question.text, question.expected, reply))
        if key not in judged:
            todo.setdefault(key, (question, reply))
    if not todo:
        return
    variant = plan.variants[plan.spec.judge]
    progress(f"judge {variant.name}: loading", 0, len(todo))
    build = variant.build  # only its model, adapter, precision and template judge: no knowledge is opened
    engine = load_build_engine(build)
    num_ctx = build.parameters.for_model(engine.context_length, engine.sampling_defaults).num_ctx
    judge = Judge(engine, engine.chat_format(build.template), num_ctx)
    for done, ((_, prompt), (question, reply)) in enumerate(todo.items(), start=1):
        judged.append({"judge": fingerprint, "prompt": prompt, "p_yes": round(judge(question.text, question.expected,
                                                                                     reply), 6)})
        progress(f"judge {variant.name}", done, len(todo))


def _verdict(judged: JsonlCache | None, judge: str | None, question: Question, row: Row) -> float | None:
    """The judge's P(yes) for this row's reply, if it was graded."""
    if judge is None or row.error is not None:
        return None
    line = judged.get((judge, prompt_key(question.text, question.expected, row.reply)))
    return line["p_yes"] if line else None


def collect(plan: Plan, fingerprints: dict[str, str], answers: JsonlCache, ppl: JsonlCache,
            complete: bool, judged: JsonlCache | None = None) -> ComparisonResults:
    """The results object, from what the caches hold for this plan."""
    judge = _judge_fingerprint(plan) if judged is not None else None
    rows_by_variant: dict[str, list[Row]] = {}
    summaries = []
    for name, variant in plan.variants.items():
        rows = []
        for question in plan.questions:
            for seed in plan.seeds(variant):
                line = answers.get((fingerprints[name], question.id, seed))
                if line is not None:
                    row = Row.from_dict({**line, "variant": name, "question": question.text,
                                         "tags": list(question.tags)})
                    row = check_row(row, question)
                    row.judge = _verdict(judged, judge, question, row)
                    rows.append(row)
        rows_by_variant[name] = rows
        model = model_fingerprint(variant.build)
        values = {}
        for kind, path in plan.texts.items():
            line = ppl.get((model, _file_hash(path)))
            values[kind] = line["perplexity"] if line else None
        summaries.append(summarize(variant, fingerprints[name], rows, values))
    texts = {q.id: q.text for q in plan.questions}
    pair_flips = [flips(a, b, rows_by_variant[a], rows_by_variant[b], texts) for a, b in plan.pairs]
    table = None
    if plan.spec.ablate is not None:
        rates = {s.name: s.pass_rate for s in summaries}
        minus = [(v.ablates[1], v.name) for v in plan.variants.values() if v.ablates and v.ablates[0] == plan.spec.ablate]
        table = ablation(plan.spec.ablate, rates, minus)
    rows = [r for rows in rows_by_variant.values() for r in rows]
    scored = [(r.passed, r.judge) for r in rows if r.passed is not None and r.judge is not None]
    judge_agreement = agreement([(ok, p >= THRESHOLD) for ok, p in scored])
    if judge_agreement is not None:
        judge_agreement["auc"] = ranking_auc(scored)
    return ComparisonResults(
        spec=str(plan.source), complete=complete, questions=len(plan.questions),
        expected_answers=plan.total_answers, variants=summaries, rows=rows, flips=pair_flips, ablation=table,
        judge=plan.spec.judge, judge_agreement=judge_agreement,
    )


def run_comparison(spec: Path | Plan, out_dir: Path, progress: Progress | None = None,
                   on_answer: Callable[[Row], None] | None = None) -> ComparisonResults:
    """Run (or complete) the comparison of `spec` into `out_dir` and write its reports.

    Bad input fails before anything is written. Ctrl-C stops the run, writes the
    reports from what is cached, and raises KeyboardInterrupt again."""

    progress = progress or no_progress
    plan = spec if isinstance(spec, Plan) else make_plan(Path(spec))
    fingerprints = {name: variant_fingerprint(v.build) for name, v in plan.variants.items()}
    answers = JsonlCache(out_dir / RESULTS, row_key)
    ppl = JsonlCache(out_dir / PERPLEXITY, _ppl_key)
    judged = JsonlCache(out_dir / JUDGED, _judged_key)
    total = plan.total_answers
    done = sum(1 for name, v in plan.variants.items() for q in plan.questions for s in plan.seeds(v)
               if (fingerprints[name], q.id, s) in answers)
    interrupted = False
    try:
        for name, variant in plan.variants.items():
            todo = [(q, s) for q in plan.questions for s in plan.seeds(variant)
                    if (fingerprints[name], q.id, s) not in answers]
            if todo:
                progress(f"{name}: loading", done, total)
                conversation = _open(variant, progress)
                reset_peak()
                for question, seed in todo:
                    row = ask(conversation, variant, fingerprints[name], question, seed)
                    answers.append(row.to_dict())
                    done += 1
                    progress(name, done, total)
                    if on_answer:
                        on_answer(row)
                del conversation
                gc.collect()
            if plan.texts and not variant.build.is_remote:  # a remote model gives no log-probabilities
                progress(f"{name}: perplexity", done, total)
                _measure_perplexity(variant, plan.texts, ppl)
        if plan.spec.judge is not None:
            _judge(plan, fingerprints, answers, judged, progress)
    except KeyboardInterrupt:
        interrupted = True
    results = collect(plan, fingerprints, answers, ppl, complete=not interrupted, judged=judged)
    if results.rows or out_dir.exists():
        answers.rewrite(r.to_dict() for r in results.rows)
        write_reports(results, out_dir)
    if interrupted:
        raise KeyboardInterrupt
    return results
