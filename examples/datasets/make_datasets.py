"""Builds the example fine-tuning datasets in this folder (deterministic).

- qa_completion.jsonl: "Question: ... Answer:" prompts and short answers, in the plain
  prompt/completion format (no chat markers): the data of the "learns to stop" test.
- json_form.jsonl: chat conversations whose answer is always the same JSON form, the
  "form filling" test.

    python examples/datasets/make_datasets.py
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent

NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
           "twelve"]
ANTONYMS = {"hot": "cold", "big": "small", "fast": "slow", "day": "night", "up": "down", "open": "closed",
            "happy": "sad", "light": "dark", "early": "late", "full": "empty", "hard": "soft", "old": "new",
            "rich": "poor", "wet": "dry", "high": "low", "strong": "weak", "loud": "quiet", "first": "last"}
LEGS = {"dog": 4, "cat": 4, "bird": 2, "spider": 8, "ant": 6, "horse": 4, "chicken": 2, "cow": 4, "bee": 6,
        "duck": 2, "octopus": 8, "lion": 4, "fly": 6, "sheep": 4}
COLORS = {"grass": "green", "the sky": "blue", "snow": "white", "coal": "black", "a banana": "yellow",
          "a tomato": "red", "an orange": "orange", "milk": "white", "a lemon": "yellow", "blood": "red"}
NAMES = ["Alice", "Bruno", "Chloé", "David", "Emma", "Farid", "Giulia", "Hugo", "Inès", "Jonas", "Karim", "Léa",
         "Marco", "Nina", "Omar", "Paula", "Quentin", "Rosa", "Sami", "Tara", "Ugo", "Vera", "Walid", "Yasmine"]
CITIES = ["Paris", "Lyon", "Marseille", "Lille", "Nantes", "Bordeaux", "Toulouse", "Nice", "Rennes", "Dijon",
          "Brest", "Metz", "Tours", "Annecy", "Grenoble", "Rouen"]
JOBS = ["baker", "nurse", "teacher", "plumber", "engineer", "painter", "farmer", "pilot", "chef", "librarian"]


def qa_pairs(rng: random.Random) -> list[tuple[str, str]]:
    pairs = []
    for a in range(13):
        for b in range(13):
            pairs.append((f"What is {a} plus {b}?", f"{a + b}."))
            if a >= b:
                pairs.append((f"What is {a} minus {b}?", f"{a - b}."))
    for n, word in enumerate(NUMBERS):
        pairs.append((f"How do you write the number {n} in words?", f"{word.capitalize()}."))
    for word, opposite in ANTONYMS.items():
        pairs.append((f"What is the opposite of {word}?", f"{opposite.capitalize()}."))
    for animal, legs in LEGS.items():
        pairs.append((f"How many legs does a {animal} have?", f"{legs}."))
    for thing, color in COLORS.items():
        pairs.append((f"What color is {thing}?", f"{color.capitalize()}."))
    rng.shuffle(pairs)
    return pairs


def form_examples(rng: random.Random, n: int) -> list[dict]:
    templates = [
        "{name} is {age} years old, lives in {city} and works as a {job}.",
        "Meet {name}: a {job} from {city}, aged {age}.",
        "In {city} there is a {job} called {name}, who is {age}.",
        "{name}, {age}, {job}, {city}.",
    ]
    records = []
    for _ in range(n):
        person = {"name": rng.choice(NAMES), "age": rng.randint(18, 80), "city": rng.choice(CITIES),
                  "job": rng.choice(JOBS)}
        text = rng.choice(templates).format(**person)
        records.append({"messages": [
            {"role": "user", "content": f"Fill in the form for this person: {text}"},
            {"role": "assistant", "content": json.dumps(person, ensure_ascii=False)},
        ]})
    return records


def main() -> None:
    rng = random.Random(20261130)
    with open(HERE / "qa_completion.jsonl", "w") as f:
        for question, answer in qa_pairs(rng):
            f.write(json.dumps({"prompt": f"Question: {question}\nAnswer:", "completion": f" {answer}"}) + "\n")
    with open(HERE / "json_form.jsonl", "w") as f:
        for record in form_examples(rng, 400):
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
