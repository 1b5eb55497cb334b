"""A variant as judge: yes or no, read from the probabilities of the two answers.

The judge model is shown the question, the expected answers when the question has
them, and the reply, and asked whether the reply is right. Nothing is generated or
parsed: its verdict is

    P(yes) = p_yes / (p_yes + p_no)

over its answer, where p_yes adds up the probability of every spelling of "yes"
("yes", "Yes", " yes", ...) as its first words, and p_no of every spelling of
"no". A reply passes the judge when P(yes) ≥ 0.5. The judge's own system prompt,
knowledge and history are not used: only its model, adapter and chat template.
"""

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

SYSTEM = "You grade answers to questions. Reply with one word: yes or no."
WITH_EXPECTED = ("Question: {question}\nCorrect answer: {expected}\nAnswer to grade: {reply}\n\n"
                 "Does the answer to grade give the correct answer?")
WITHOUT_EXPECTED = ("Question: {question}\nAnswer to grade: {reply}\n\n"
                    "Does the answer to grade answer the question correctly?")
YES = ("yes", "Yes", "YES", " yes", " Yes", " YES")
NO = ("no", "No", "NO", " no", " No", " NO")
THRESHOLD = 0.5


def judge_messages(question: str, expected: Sequence[str], reply: str) -> list[dict]:
    template = WITH_EXPECTED if expected else WITHOUT_EXPECTED
    user = template.format(question=question, expected=" / ".join(expected), reply=reply.strip() or "(nothing)")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def prompt_key(question: str, expected: Sequence[str], reply: str) -> str:
    """What a verdict depends on besides the judge: the whole judge prompt."""
    text = json.dumps([SYSTEM, WITH_EXPECTED, WITHOUT_EXPECTED, question, list(expected), reply])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def answer_sequences(tokenizer, spellings: Sequence[str]) -> list[tuple[int, ...]]:
    """The distinct token sequences that spell the answer."""
    return sorted({tuple(tokenizer.encode(s)) for s in spellings} - {()})


def p_yes(lp_yes: float, lp_no: float) -> float:
    """P(yes) between the two answers, from their log-probabilities."""
    top = max(lp_yes, lp_no)
    return math.exp(lp_yes - top) / (math.exp(lp_yes - top) + math.exp(lp_no - top))


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


@dataclass
class Judge:
    """A loaded judge: its engine and chat format."""

    engine: object
    format: object
    num_ctx: int

    def __post_init__(self):
        tokenizer = self.engine.tokenizer
        self.yes, self.no = answer_sequences(tokenizer, YES), answer_sequences(tokenizer, NO)

    def prompt_ids(self, question: str, expected: Sequence[str], reply: str) -> list[int]:
        ids = self.format.encode(judge_messages(question, expected, reply))
        longest = max(map(len, self.yes + self.no))
        room = self.num_ctx - longest
        if len(ids) > room:  # an overlong reply: its middle is cut, the question and the ask stay
            ids = ids[: room // 2] + ids[-(room - room // 2):]
        return ids

    def __call__(self, question: str, expected: Sequence[str], reply: str) -> float:
        """P(yes) that `reply` answers `question` (given its expected answers) rightly.
        A spelling of several tokens is scored token by token (the engine's cache
        keeps the prompt, so each further token costs one step)."""
        ids = self.prompt_ids(question, expected, reply)
        seen: dict[tuple[int, ...], object] = {}

        def logprob(sequence: tuple[int, ...]) -> float:
            total = 0.0
            for i, token in enumerate(sequence):
                prefix = sequence[:i]
                if prefix not in seen:
                    seen[prefix] = self.engine.next_token_logprobs(ids + list(prefix), self.num_ctx)
                total += float(seen[prefix][token])
            return total

        return p_yes(_logsumexp([logprob(s) for s in self.yes]), _logsumexp([logprob(s) for s in self.no]))


def agreement(pairs: Sequence[tuple[bool, bool]]) -> dict | None:
    """How often the judge agrees with the rule checks, over (checks, judge) verdict
    pairs: the share that agree and Cohen's kappa (agreement beyond chance; None when
    chance agreement is total). None without pairs."""
    n = len(pairs)
    if n == 0:
        return None
    agree = sum(1 for a, b in pairs if a == b)
    p_checks = sum(1 for a, _ in pairs if a) / n
    p_judge = sum(1 for _, b in pairs if b) / n
    chance = p_checks * p_judge + (1 - p_checks) * (1 - p_judge)
    observed = agree / n
    kappa = None if chance >= 1 else (observed - chance) / (1 - chance)
    return {"n": n, "agree": agree, "rate": observed, "kappa": kappa,
            "checks_pass": p_checks, "judge_pass": p_judge}


def ranking_auc(pairs: Sequence[tuple[bool, float]]) -> float | None:
    """How well P(yes) ranks the replies the rule checks pass above those they fail,
    whatever the threshold: the chance that a passing reply gets the higher P(yes)
    (ties count half). 0.5 is chance; None unless both kinds of replies exist."""
    right = [p for ok, p in pairs if ok]
    wrong = [p for ok, p in pairs if not ok]
    if not right or not wrong:
        return None
    wins = sum((a > b) + 0.5 * (a == b) for a in right for b in wrong)
    return wins / (len(right) * len(wrong))
