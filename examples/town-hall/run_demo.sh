#!/usr/bin/env bash
# The town-hall scenario end to end, on the default model: fine-tune the answer format, bake it,
# merge it half-way back into its base, index the documents, create the build, and compare every
# lever (compare.yml). The report goes to compare-town-hall/ in the current folder.
#
#   PML_HOME=/tmp/demo bash examples/town-hall/run_demo.sh     # or: make demo
#
# Everything goes into $PML_HOME (pml's default when unset). Running it again replaces the
# adapter, the models and the build, skips the unchanged documents, and compare re-runs only
# what its cache does not hold. PML names the pml command (default: pml on PATH).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PML="${PML:-pml}"
BASE=smollm2-135m-instruct
OUT="${OUT:-compare-town-hall}"

step() {  # step TITLE COMMAND...: runs the command and says how long it took
    local title="$1" start=$SECONDS
    shift
    echo "== $title"
    "$@"
    echo "== $title: $((SECONDS - start)) s"
}

echo "PML_HOME=${PML_HOME:-(the default, ~/.pimpmyllama)}"
# 170 short conversations (12k tokens): 20 steps of 4 packed 512-token rows (41k tokens, about
# 3.5 epochs) at a high LoRA learning rate teach the "Town hall:" format; 10 steps did not.
step "fine-tune the answer format (LoRA townhall)" \
    "$PML" train sft "$HERE/sft.jsonl" --from "$BASE" -o townhall --force --max-steps 20 --lr 1e-3 --save-steps 100
step "bake the adapter into its base (townhall-tuned)" \
    "$PML" merge lora "$BASE" townhall -o townhall-tuned --force
step "merge the fine-tune with its base (townhall-merged, slerp t=0.5)" \
    "$PML" merge "$HERE/merge.yml" -o townhall-merged --force
if ! "$PML" kb show town >/dev/null 2>&1; then
    step "create the knowledge base town" "$PML" kb create town
fi
step "index the documents (kb town)" "$PML" kb add town "$HERE/docs"
step "create the build town-hall-rag" "$PML" create town-hall-rag -f "$HERE/build.yml" --force
step "compare the levers" "$PML" compare "$HERE/compare.yml" -o "$OUT"
echo "report: $OUT/report.html"
