#!/usr/bin/env bash
# Synthetic English recipe: fortunes sentences spoken by espeak-ng, flite and festival voices -> augmented
# training corpus -> prepare -> train -> CER/WER on seen and unseen voices, clean and telephone -> transcribe.
#
#   recipes/synth/run.sh                                   # everything, with the defaults below
#   recipes/synth/run.sh --stop-stage 2                    # only make the corpus (data/synth-corpus)
#   recipes/synth/run.sh --n-train 300 --n-dev 30 --n-test 30 --n-unseen 30 --corpus data/synth-small
#
# Run from the repository root. Nothing is downloaded; the synthesisers are Debian packages. Stages (run a range
# with --stage N --stop-stage M; every stage can be re-run, and skips or reuses finished work):
#   0  check the synthesisers, voices, sox and fortunes text; install them with apt-get when run as root
#   1  synthesise CORPUS/{train,dev,test-seen,test-unseen}  (scripts/synth_corpus.py; resumable)
#   2  telephone copies of the test sets: CORPUS/test-seen-phone, CORPUS/test-unseen-phone
#   3  augmented training corpus CORPUS-aug: CORPUS plus --copies augmented copies of train (scripts/augment_corpus.py)
#   4  asr prepare CORPUS-aug -> DATA
#   5  asr train -> EXP (resumes after an interruption; skipped once finished)
#   6  asr eval on each test set -> EXP/eval/<set>.json and the table EXP/results.md
#   7  asr transcribe the first test-unseen utterance
#
# Options:
#   --corpus DIR           generated corpus (default: data/synth-corpus; the augmented one is DIR-aug)
#   --n-train N, --n-dev N, --n-test N, --n-unseen N   utterances per split (default 5000, 300, 300, 300)
#   --seed N               seeds sentences, voices, speed, pitch, level and augmentation (default 0)
#   --effects LIST         training augmentation (default: speed,pitch,reverb,noise,telephone)
#   --prob P, --copies N   probability of each effect per copy, copies per utterance (default 0.4, 1)
#   --config FILE          training config (default: cpu.yaml beside this script)
#   --data DIR, --exp DIR  outputs (default: data/synth/<config name>, exp/synth/<config name>)
#   --workers N            parallel synthesis / augmentation / feature jobs (default 2)
#   --set SECTION.KEY=VAL  config override for prepare and train (repeatable), e.g. --set train.epochs=5
#   --stage N, --stop-stage M   first and last stage to run (default 0 and 7)
# Environment: ASR (default: asr) is the toolkit command; PYTHON (default: .venv/bin/python when present,
# else python3) runs the generation scripts and must import asr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
asr=${ASR:-asr}  # left unquoted below on purpose: ASR="python -m asr" works too
if [ -x "$root/.venv/bin/python" ]; then python=${PYTHON:-$root/.venv/bin/python}; else python=${PYTHON:-python3}; fi
packages="espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox fortunes"
stage=0
stop_stage=7
corpus=data/synth-corpus
n_train=5000
n_dev=300
n_test=300
n_unseen=300
seed=0
effects=speed,pitch,reverb,noise,telephone
prob=0.4
copies=1
config=$here/cpu.yaml
data=""
exp=""
workers=2
overrides=()

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "run.sh: error: $*" >&2; exit 2; }
in_stages() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

case ${1:-} in -h|--help) usage; exit 0 ;; esac
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "option $1 needs a value (see --help)"
  case $1 in
    --stage) stage=$2 ;;
    --stop-stage) stop_stage=$2 ;;
    --corpus) corpus=$2 ;;
    --n-train) n_train=$2 ;;
    --n-dev) n_dev=$2 ;;
    --n-test) n_test=$2 ;;
    --n-unseen) n_unseen=$2 ;;
    --seed) seed=$2 ;;
    --effects) effects=$2 ;;
    --prob) prob=$2 ;;
    --copies) copies=$2 ;;
    --config) config=$2 ;;
    --data) data=$2 ;;
    --exp) exp=$2 ;;
    --workers) workers=$2 ;;
    --set) overrides+=(--set "$2") ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift 2
done

[ -f "$config" ] || die "config file not found: $config"
name=$(basename "$config" .yaml)
data=${data:-data/synth/$name}
exp=${exp:-exp/synth/$name}
augmented=${corpus%/}-aug
test_sets="test-seen test-unseen test-seen-phone test-unseen-phone"

if in_stages 0; then
  echo "stage 0: check the synthesisers, voices and fortunes text"
  if ! "$python" "$root/scripts/synth_corpus.py" --out "$corpus" --check; then
    [ "$(id -u)" -eq 0 ] || die "run as root, or install them first: apt-get install -y $packages"
    echo "stage 0: installing $packages"
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages
    "$python" "$root/scripts/synth_corpus.py" --out "$corpus" --check || die "still missing after apt-get install"
  fi
fi

if in_stages 1; then
  echo "stage 1: synthesise $corpus"
  "$python" "$root/scripts/synth_corpus.py" --out "$corpus" --seed "$seed" --n-train "$n_train" --n-dev "$n_dev" \
    --n-test "$n_test" --n-unseen "$n_unseen" --workers "$workers"
fi

if in_stages 2; then
  echo "stage 2: telephone copies of test-seen and test-unseen"
  "$python" "$root/scripts/augment_corpus.py" --in "$corpus" --out "$corpus" --folders test-seen,test-unseen \
    --suffix=-phone --effects telephone --seed "$seed" --workers "$workers"
fi

if in_stages 3; then
  echo "stage 3: $augmented = $corpus + $copies augmented copies of train ($effects, each with p=$prob)"
  "$python" "$root/scripts/augment_corpus.py" --in "$corpus" --out "$augmented" --folders train \
    --effects "$effects" --prob "$prob" --copies "$copies" --seed "$seed" --workers "$workers"
fi

if in_stages 4; then
  echo "stage 4: asr prepare $augmented -> $data"
  $asr prepare "$augmented" --out "$data" --config "$config" --format librispeech --jobs "$workers" \
    ${overrides[@]+"${overrides[@]}"}
fi

if in_stages 5; then
  if [ -f "$exp/.done" ]; then
    echo "stage 5: $exp is trained already (delete $exp/.done to train again)"
  else
    resume=()
    if [ -f "$exp/checkpoint/state.json" ]; then
      resume=(--resume)
      echo "stage 5: asr train, resuming $exp"
    else
      echo "stage 5: asr train -> $exp"
    fi
    $asr train --config "$config" --data "$data" --out "$exp" ${overrides[@]+"${overrides[@]}"} \
      ${resume[@]+"${resume[@]}"}
    touch "$exp/.done"
  fi
fi

if in_stages 6; then
  mkdir -p "$exp/eval"
  reports=()
  for s in $test_sets; do
    echo "stage 6: asr eval on $s"
    $asr eval --model "$exp/bundle" --data "$data" --split test --subset "$s" --report "$exp/eval/$s.json"
    reports+=("$exp/eval/$s.json")
  done
  "$python" - "$exp/results.md" "${reports[@]}" <<'EOF'
import json, sys
rows = ["| test set | utterances | CER % | WER % |", "|---|---:|---:|---:|"]
for path in sys.argv[2:]:
    r = json.load(open(path, encoding="utf-8"))
    rows.append(f"| {r['subset']} | {r['n_utts']} | {100 * r['cer']:.2f} | {100 * r['wer']:.2f} |")
open(sys.argv[1], "w", encoding="utf-8").write("\n".join(rows) + "\n")
print("\n".join(rows))
EOF
  echo "results: $exp/results.md"
fi

if in_stages 7; then
  audio=$(ls "$corpus"/test-unseen/*/*/*.flac 2>/dev/null | head -n 1 || true)
  [ -n "$audio" ] || die "no test-unseen audio in $corpus to transcribe (run stage 1)"
  uid=$(basename "$audio" .flac)
  echo "stage 7: asr transcribe $audio"
  echo "reference:  $(grep -h "^$uid " "$(dirname "$audio")"/*.trans.txt | cut -d' ' -f2- | tr '[:upper:]' '[:lower:]')"
  echo "transcript: $($asr transcribe "$exp/bundle" "$audio")"
fi
