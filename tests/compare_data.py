"""Questions and a spec shared by the comparison tests."""

QUESTIONS = [
    {"question": "When does the post office open?", "expected": ["9am", "9 h"]},
    {"question": "Is a cap required at the pool?", "expected": "cap", "check": ["contains", "stops"]},
    {"question": "Say something.", "tags": ["free"]},
]

SPEC = """\
questions: questions.jsonl
perplexity: false
variants:
  base: {model: tiny}
  prompted: {extends: base, system: "Answer like the town hall."}
"""
