"""The results of a comparison: plain dataclasses, JSON-serialisable
(`ComparisonResults.to_dict`). The reports are drawn from this object alone.

A variant's pass rate counts the rows that have checks (a row passes when every
check passes); with no checked row it is None, shown as "—", never NaN.
"""

from dataclasses import asdict, dataclass, field, fields
from statistics import fmean

from pimpmyllama.evaluation.judge import THRESHOLD as JUDGE_THRESHOLD
from pimpmyllama.evaluation.stats import Ablation, Flips, wilson

SECTIONS = ("system", "pinned", "few-shot", "knowledge", "recalled", "history", "message", "template")


@dataclass
class Row:
    """One answer: a variant × question × seed."""

    variant: str
    fingerprint: str
    question_id: str
    question: str
    seed: int
    reply: str
    finish_reason: str  # "stop", "length", "interrupted", or "error" (the question could not be asked)
    reply_tokens: int
    prompt_tokens: int
    ttft_s: float
    tokens_per_s: float
    context: dict[str, int] = field(default_factory=dict)  # tokens per packer section
    passages: list[str] = field(default_factory=list)  # knowledge passages offered (source#position)
    cited: list[str] = field(default_factory=list)  # ... and those the reply cites by number
    rss_mb: float | None = None  # the process's peak RSS so far in this variant
    tags: list[str] = field(default_factory=list)
    error: str | None = None
    verdicts: list[dict] = field(default_factory=list)  # {"check", "passed", "detail"}
    passed: bool | None = None  # every check passed; None when the question has no check
    judge: float | None = None  # the judge's P(yes), when the spec names a judge

    @property
    def key(self) -> tuple:
        return (self.fingerprint, self.question_id, self.seed)

    @property
    def stopped(self) -> bool:
        return self.finish_reason == "stop"

    def to_dict(self) -> dict:
        return {**asdict(self), "stopped": self.stopped}

    @classmethod
    def from_dict(cls, data: dict) -> "Row":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def row_key(data: dict) -> tuple:
    return (data["fingerprint"], data["question_id"], data["seed"])


@dataclass
class VariantSummary:
    name: str
    label: str  # the name and its levers
    levers: list[str]
    engine: str  # the base model
    fingerprint: str
    answered: int
    checked: int
    passed: int
    pass_rate: float | None
    interval: tuple[float, float] | None  # Wilson 95 %
    stop_rate: float | None
    mean_reply_tokens: float | None
    ppl_domain: float | None
    ppl_general: float | None
    tokens_per_s: float | None
    ttft_s: float | None
    peak_rss_mb: float | None
    context: dict[str, float]  # mean tokens per packer section
    judged: int = 0  # rows the judge graded
    judge_rate: float | None = None  # share of them it said yes to


def _mean(values: list[float]) -> float | None:
    return fmean(values) if values else None


def summarize(variant, fingerprint: str, rows: list[Row], ppl: dict[str, float | None]) -> VariantSummary:
    checked = [r for r in rows if r.passed is not None]
    passed = sum(1 for r in checked if r.passed)
    asked = [r for r in rows if r.error is None]
    timed = [r for r in asked if r.tokens_per_s > 0]
    context = {s: round(fmean(r.context.get(s, 0) for r in asked), 1) for s in SECTIONS} if asked else {}
    peaks = [r.rss_mb for r in rows if r.rss_mb is not None]
    judged = [r.judge for r in rows if r.judge is not None]
    return VariantSummary(
        name=variant.name, label=variant.label, levers=list(variant.levers), engine=variant.engine,
        fingerprint=fingerprint, answered=len(rows), checked=len(checked), passed=passed,
        pass_rate=passed / len(checked) if checked else None,
        interval=wilson(passed, len(checked)),
        stop_rate=sum(r.stopped for r in asked) / len(asked) if asked else None,
        mean_reply_tokens=_mean([r.reply_tokens for r in asked]),
        ppl_domain=ppl.get("domain"), ppl_general=ppl.get("general"),
        tokens_per_s=_mean([r.tokens_per_s for r in timed]),
        ttft_s=_mean([r.ttft_s for r in asked]),
        peak_rss_mb=max(peaks) if peaks else None,
        context=context,
        judged=len(judged), judge_rate=sum(p >= JUDGE_THRESHOLD for p in judged) / len(judged) if judged else None,
    )


@dataclass
class ComparisonResults:
    spec: str
    complete: bool  # False when the run was interrupted: some answers are missing
    questions: int
    expected_answers: int
    variants: list[VariantSummary]
    rows: list[Row]
    flips: list[Flips]
    ablation: Ablation | None = None
    judge: str | None = None  # the variant that judged
    judge_agreement: dict | None = None  # with the rule checks: n, agree, rate, kappa (evaluation.judge)

    def variant(self, name: str) -> VariantSummary:
        return next(v for v in self.variants if v.name == name)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["rows"] = [r.to_dict() for r in self.rows]
        return data
