"""What constrained decoding (response_format json_schema, by llguidance) costs per
token: decode tokens/s of the default model with and without the grammar, same prompt,
same greedy decoding, in the same run.

    python bench/constrained.py [--tokens 64] [--runs 3]
"""

import argparse
import json

from pimpmyllama.generation.engine import Engine, GenerationParams
from pimpmyllama.generation.json_grammar import JsonGrammar
from pimpmyllama.generation.sampling import SamplingParams
from pimpmyllama.models.defaults import DEFAULT_MODEL
from pimpmyllama.models.store import ModelStore

SCHEMA = {"type": "object", "properties": {"towns": {"type": "array", "items": {
    "type": "object", "properties": {"name": {"type": "string"}, "people": {"type": "integer"}},
    "required": ["name", "people"]}, "minItems": 50}}, "required": ["towns"]}


def decode_rate(engine, ids, params) -> tuple[float, int]:
    completion = engine.generate(ids, params).run()
    return completion.usage.tokens_per_second, completion.usage.completion_tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    engine = Engine.load(DEFAULT_MODEL, ModelStore().ensure_default())
    ids = engine.chat_format().encode([{"role": "user", "content": "List fifty towns and their populations as JSON."}])
    greedy = SamplingParams(temperature=0, repeat_penalty=1.0)
    free = GenerationParams(max_new_tokens=args.tokens, sampling=greedy, ignore_end_tokens=True)
    constrained = GenerationParams(max_new_tokens=args.tokens, sampling=greedy,
                                   grammar=JsonGrammar.from_schema(SCHEMA))
    decode_rate(engine, ids, constrained)  # warm: llguidance's tokenizer view is built once
    rows = {}
    for name, params in (("free", free), ("json_schema", constrained)):
        runs = [decode_rate(engine, ids, params) for _ in range(args.runs)]
        rows[name] = max(r[0] for r in runs), runs[0][1]
    print(f"| decoding | tokens/s (best of {args.runs}) | tokens | ratio |\n|---|---|---|---|")
    for name, (rate, tokens) in rows.items():
        print(f"| {name} | {rate:.1f} | {tokens} | {rate / rows['free'][0]:.2f} |")
    print(json.dumps({k: round(v[0], 1) for k, v in rows.items()}))


if __name__ == "__main__":
    main()
