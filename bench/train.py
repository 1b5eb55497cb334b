"""Training throughput and memory: our SFT recipe against the standard one,
transformers `Trainer` + peft LoRA with padded batches, in one run.

Both train the same LoRA (rank 8, alpha 16, all linear layers, no dropout) on the
same tokenized examples (the same label masks), with the same learning rate and
schedule, for one epoch, each in its own process so that peak memory (RSS) is
measured apart. The baseline takes batches of 4 examples padded to the longest;
ours packs examples into rows of --max-length tokens and takes 4 rows per
optimizer step, one per micro-batch (its defaults). Reported: trained tokens (positions with a label)
per second of training, and peak RSS.

    python bench/train.py [--examples 240] [--batch-size 4] [--max-length 256]
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
DATA = [ROOT / "examples" / "datasets" / "json_form.jsonl"]


def mixed_dataset(folder: Path, examples: int) -> Path:
    """Chat examples with the long-tailed lengths of real instruction data: a third
    "summarise this documentation" (a standard-library docstring, a one-sentence
    answer), a third JSON form filling, a third short questions."""
    sys.path.insert(0, str(Path(__file__).parent))
    from corpus import docstrings, source_files

    third = examples // 3
    rows = [json.loads(line) for line in DATA[0].read_text().splitlines()][:third]
    qa = [json.loads(line) for line in (ROOT / "examples" / "datasets" / "qa_completion.jsonl").read_text().splitlines()]
    for r in qa[:third]:
        question = r["prompt"].split("Question: ", 1)[1].rsplit("\n", 1)[0]
        rows.append({"messages": [{"role": "user", "content": question},
                                  {"role": "assistant", "content": r["completion"].strip()}]})
    docs = []
    for path in source_files(include_packages=False):
        for _, doc in docstrings(path):
            if 200 < len(doc) < 2500:
                docs.append(doc)
        if len(docs) >= examples - len(rows):
            break
    for doc in docs[: examples - len(rows)]:
        summary = doc.split(".")[0].strip() + "."
        rows.append({"messages": [{"role": "user", "content": f"Summarise this documentation:\n\n{doc}"},
                                  {"role": "assistant", "content": summary}]})
    import random

    random.Random(0).shuffle(rows)
    path = folder / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def run_ours(data: Path, batch: int, max_length: int) -> dict:
    from pimpmyllama.training.config import TrainConfig
    from pimpmyllama.training.recipe import train

    times = []

    def progress(m):
        times.append(m)

    # The recipe's defaults: one packed row per micro-batch, `batch` micro-batches per step.
    result = train(TrainConfig.model_validate({"data": [str(data)], "output": "bench-ours", "epochs": 1,
                                               "batch_size": 1, "gradient_accumulation": batch,
                                               "max_length": max_length, "eval_split": 0.0,
                                               "save_steps": 10_000}), progress=progress)
    last = times[-1]
    return {"trained_tokens_per_second": last["trained_tokens_per_second"], "steps": result.steps,
            "seconds": last["elapsed"]}


def run_trainer(data: Path, batch: int, max_length: int) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    from pimpmyllama.models.defaults import DEFAULT_MODEL
    from pimpmyllama.models.store import ModelStore
    from pimpmyllama.prompting.format import ChatFormat
    from pimpmyllama.prompting.tokenizer import Tokenizer
    from pimpmyllama.training.dataset import prepare

    folder = ModelStore().folder(DEFAULT_MODEL)
    tokenizer = Tokenizer(folder)
    prepared = prepare([data], ChatFormat(tokenizer), kind="sft", max_length=max_length, eval_split=0.0, seed=42)
    examples = [{"input_ids": e.input_ids, "labels": e.labels} for e in prepared.train]
    trained = sum(sum(1 for x in e["labels"][1:] if x != -100) for e in examples)
    pad = tokenizer.token_to_id(tokenizer.pad_token) or 0

    def collate(items):
        width = max(len(i["input_ids"]) for i in items)
        ids = torch.full((len(items), width), pad)
        labels = torch.full((len(items), width), -100)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            ids[row, :n] = torch.tensor(item["input_ids"])
            labels[row, :n] = torch.tensor(item["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear",
                                             task_type="CAUSAL_LM"))

    class Clock(TrainerCallback):
        start = end = 0.0

        def on_train_begin(self, *args, **kwargs):
            Clock.start = time.perf_counter()

        def on_train_end(self, *args, **kwargs):
            Clock.end = time.perf_counter()

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=batch, num_train_epochs=1,
                                 learning_rate=2e-4, lr_scheduler_type="cosine", warmup_steps=0.03,
                                 save_strategy="no", report_to=[], logging_steps=1000, use_cpu=True, seed=42,
                                 disable_tqdm=True, dataloader_num_workers=0)
        trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=collate,
                          callbacks=[Clock()])
        trainer.train()
    seconds = Clock.end - Clock.start
    return {"trained_tokens_per_second": trained / seconds, "steps": -(-len(examples) // batch), "seconds": seconds}


def child(which: str, data: str, batch: int, max_length: int) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    result = (run_ours if which == "ours" else run_trainer)(Path(data), batch, max_length)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=240)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=768)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.batch_size, args.max_length)
        return
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = mixed_dataset(Path(tmp), args.examples)
        env = {**os.environ, "PML_HOME": os.environ.get("PML_HOME", str(Path.home() / ".pimpmyllama"))}
        for which in ("trainer", "ours"):
            out = subprocess.run([sys.executable, __file__, "--child", which, str(data), "--batch-size",
                                  str(args.batch_size), "--max-length", str(args.max_length)],
                                 capture_output=True, text=True, env=env)
            line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
            if out.returncode or not line:
                sys.exit(f"{which} failed:\n{out.stderr[-3000:]}")
            results[which] = json.loads(line[-1][7:])
    t, o = results["trainer"], results["ours"]
    print(f"\nLoRA SFT, {args.examples} chat examples, {args.batch_size} sequences per step, one epoch, "
          f"SmolLM2-135M, fp32, CPU")
    print("baseline: transformers Trainer + peft, padded batches (same examples, labels and hyperparameters)\n")
    print(f"{'':22} {'trained tok/s':>14} {'steps':>6} {'seconds':>8} {'peak RSS MB':>12}")
    print(f"{'Trainer + peft':22} {t['trained_tokens_per_second']:>14.1f} {t['steps']:>6} {t['seconds']:>8.1f} "
          f"{t['peak_rss_mb']:>12.0f}")
    print(f"{'pml train sft':22} {o['trained_tokens_per_second']:>14.1f} {o['steps']:>6} {o['seconds']:>8.1f} "
          f"{o['peak_rss_mb']:>12.0f}")
    print(f"\nratio: {o['trained_tokens_per_second'] / t['trained_tokens_per_second']:.2f}x the trained tokens/s "
          f"(goal >= 1.5x), {o['peak_rss_mb'] / t['peak_rss_mb']:.2f}x the peak memory (goal <= 1.0x)")


if __name__ == "__main__":
    main()
