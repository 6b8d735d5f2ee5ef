#!/usr/bin/env bash
# Which augmentations help a model trained on synthetic voices: train one small model per augmentation and score it
# on the voice-disjoint test set, clean and through a telephone channel.
#
#   recipes/synth/run.sh --corpus data/synth-exp --n-train 1500 --stop-stage 2   # a corpus with phone test sets
#   recipes/synth/augment_experiment.sh data/synth-exp
#   recipes/synth/augment_experiment.sh data/synth-exp --variants "none noise" --set train.epochs=1   # smoke test
#
# CORPUS is a corpus made by stages 1-2 of run.sh. Variant V trains on CORPUS/train plus one copy of it with effect
# V (`all`: every effect, each with p=0.5); `none` trains on the clean audio alone for twice the epochs, so every
# variant takes the same number of steps. Outputs under WORK (default exp/synth/augment): corpus-V (hard links plus
# the copies), data-V, exp-V, and the table results.md. Every step is skipped when its output exists.
#
# Options:
#   --variants "A B"       any of: none speed tempo pitch reverb noise telephone all (default: all of them)
#   --work DIR             output folder (default: exp/synth/augment)
#   --config FILE          training config (default: experiment.yaml beside this script)
#   --workers N            augmentation / feature jobs (default 2)
#   --seed N               augmentation seed (default 0)
#   --range NAME=LO,HI     an effect's parameter range, e.g. speed=0.8,1.2 (repeatable; see local/augment_corpus.py)
#   --set SECTION.KEY=VAL  config override for prepare and train (repeatable)
# Environment: ASR (default: asr), PYTHON (default: .venv/bin/python when present, else python3).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
asr=${ASR:-asr}
if [ -x "$root/.venv/bin/python" ]; then python=${PYTHON:-$root/.venv/bin/python}; else python=${PYTHON:-python3}; fi
variants="none speed tempo pitch reverb noise telephone all"
work=exp/synth/augment
config=$here/experiment.yaml
workers=2
seed=0
overrides=()
set_values=()
ranges=()

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "augment_experiment.sh: error: $*" >&2; exit 2; }

case ${1:-} in
  "" ) usage >&2; exit 2 ;;
  -h|--help ) usage; exit 0 ;;
  -* ) die "the first argument is the corpus folder, got option $1 (see --help)" ;;
esac
corpus=${1%/}
shift
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "option $1 needs a value (see --help)"
  case $1 in
    --variants) variants=$2 ;;
    --work) work=$2 ;;
    --config) config=$2 ;;
    --workers) workers=$2 ;;
    --seed) seed=$2 ;;
    --set) overrides+=(--set "$2"); set_values+=("$2") ;;
    --range) ranges+=(--range "$2") ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift 2
done

[ -f "$config" ] || die "config file not found: $config"
for s in train dev test-unseen test-unseen-phone test-seen; do
  [ -d "$corpus/$s" ] || die "$corpus/$s not found: make the corpus with recipes/synth/run.sh --stop-stage 2"
done
read_epochs='import sys; from asr.config import load_config; print(load_config(sys.argv[1], sys.argv[2:]).train.epochs)'
epochs=$("$python" -c "$read_epochs" "$config" ${set_values[@]+"${set_values[@]}"})
test_sets="test-seen test-unseen test-unseen-phone"
mkdir -p "$work"

for v in $variants; do
  case $v in
    none) effects="" ;;
    all) effects=speed,tempo,pitch,reverb,noise,telephone ;;
    speed|tempo|pitch|reverb|noise|telephone) effects=$v ;;
    *) die "unknown variant $v (valid: none speed tempo pitch reverb noise telephone all)" ;;
  esac
  train_corpus=$corpus
  extra=(--set "train.epochs=$((2 * epochs))")
  if [ -n "$effects" ]; then
    train_corpus=$work/corpus-$v
    prob=1.0
    [ "$v" = all ] && prob=0.5
    extra=()
    echo "== $v: augment train -> $train_corpus"
    "$python" "$here/local/augment_corpus.py" --in "$corpus" --out "$train_corpus" --folders train \
      --effects "$effects" --prob "$prob" --copies 1 --seed "$seed" --workers "$workers" \
      ${ranges[@]+"${ranges[@]}"}
  fi
  echo "== $v: prepare, train, eval"
  $asr prepare "$train_corpus" --out "$work/data-$v" --config "$config" --format librispeech --jobs "$workers" \
    ${overrides[@]+"${overrides[@]}"}
  if [ ! -f "$work/exp-$v/.done" ]; then
    $asr train --config "$config" --data "$work/data-$v" --out "$work/exp-$v" ${overrides[@]+"${overrides[@]}"} \
      ${extra[@]+"${extra[@]}"}
    touch "$work/exp-$v/.done"
  fi
  for s in $test_sets; do
    [ -f "$work/exp-$v/eval-$s.json" ] || $asr eval --model "$work/exp-$v/bundle" --data "$work/data-$v" \
      --split test --subset "$s" --report "$work/exp-$v/eval-$s.json"
  done
done

"$python" - "$work" "$test_sets" $variants <<'EOF'
import json, sys
from pathlib import Path
work, sets, variants = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3:]
head = "| variant | " + " | ".join(f"{s} CER % | {s} WER %" for s in sets) + " |"
rows = [head, "|---|" + "---:|---:|" * len(sets)]
for v in variants:
    cells = []
    for s in sets:
        r = json.loads((work / f"exp-{v}" / f"eval-{s}.json").read_text(encoding="utf-8"))
        cells += [f"{100 * r['cer']:.1f}", f"{100 * r['wer']:.1f}"]
    rows.append(f"| {v} | " + " | ".join(cells) + " |")
(work / "results.md").write_text("\n".join(rows) + "\n", encoding="utf-8")
print("\n".join(rows))
EOF
echo "results: $work/results.md"
