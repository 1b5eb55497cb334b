"""The side-by-side comparison (`pml compare`): the same questions put to several
variants of a model — prompted, with knowledge, fine-tuned, merged, combined —
checked offline, cached per variant fingerprint, and reported as HTML, Markdown
and JSONL. `runner.run_comparison` is the entry point."""
