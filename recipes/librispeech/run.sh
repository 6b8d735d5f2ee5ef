#!/usr/bin/env bash
# LibriSpeech recipe: prepare -> train -> WER per test set -> transcribe one test utterance.
#
#   recipes/librispeech/run.sh /data/LibriSpeech                     # CPU variant on train-clean-100
#   recipes/librispeech/run.sh /data/LibriSpeech --config recipes/librispeech/gpu_100h.yaml
#   recipes/librispeech/run.sh /data/LibriSpeech --config recipes/librispeech/gpu_960h.yaml \
#       --train-sets "train-clean-100 train-clean-360 train-other-500"
#
# LIBRISPEECH_DIR is the folder the openslr.org/12 archives unpack to (it holds train-clean-100/, dev-clean/,
# test-clean/, ...). Nothing is downloaded and the corpus is never modified. Stages (run a range with
# --stage N --stop-stage M; every stage can be re-run, and skips or reuses finished work):
#   0  check the corpus; link the chosen subsets into DATA/corpus (symlinks to the files, nothing copied)
#   1  asr prepare    features, manifests, vocabulary in DATA (train-* -> train, dev-* -> dev, test-* -> test)
#   2  asr train      into EXP; resumes from EXP/checkpoint after an interruption; skipped once finished
#   3  asr eval       one report per test set, EXP/eval/<set>.json, and the WER table EXP/results.md
#   4  asr transcribe the first utterance of the first test set
#
# Options:
#   --config FILE          recipe config (default: cpu.yaml beside this script)
#   --train-sets "A B"     training subsets (default: train-clean-100)
#   --dev-sets "A B"       subsets that pick the best epoch (default: dev-clean dev-other)
#   --test-sets "A B"      subsets scored in stage 3 (default: test-clean test-other)
#   --data DIR, --exp DIR  outputs (default: data/librispeech/<config name>, exp/librispeech/<config name>)
#   --jobs N               feature-extraction processes (default 0: all cores)
#   --set SECTION.KEY=VAL  config override for prepare and train (repeatable), e.g. --set train.epochs=5
#   --stage N, --stop-stage M   first and last stage to run (default 0 and 4)
# Environment: ASR (default: asr) is the toolkit command; PYTHON (default: python3) writes the results table.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
asr=${ASR:-asr}  # left unquoted below on purpose: ASR="python -m asr" works too
python=${PYTHON:-python3}
stage=0
stop_stage=4
config=$here/cpu.yaml
train_sets="train-clean-100"
dev_sets="dev-clean dev-other"
test_sets="test-clean test-other"
data=""
exp=""
jobs=0
overrides=()

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "run.sh: error: $*" >&2; exit 2; }
in_stages() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

case ${1:-} in
  "" ) usage >&2; exit 2 ;;
  -h|--help ) usage; exit 0 ;;
  -* ) die "the first argument is the LibriSpeech folder, got option $1 (see --help)" ;;
esac
corpus=$1
shift
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "option $1 needs a value (see --help)"
  case $1 in
    --stage) stage=$2 ;;
    --stop-stage) stop_stage=$2 ;;
    --config) config=$2 ;;
    --train-sets) train_sets=$2 ;;
    --dev-sets) dev_sets=$2 ;;
    --test-sets) test_sets=$2 ;;
    --data) data=$2 ;;
    --exp) exp=$2 ;;
    --jobs) jobs=$2 ;;
    --set) overrides+=(--set "$2") ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift 2
done

for n in "$stage" "$stop_stage" "$jobs"; do
  case $n in ''|*[!0-9]*) die "--stage, --stop-stage and --jobs take a whole number, got '$n'" ;; esac
done
[ -f "$config" ] || die "config file not found: $config"
[ -d "$corpus" ] || die "corpus folder not found: $corpus (LibriSpeech is at https://www.openslr.org/12)"
corpus=$(cd "$corpus" && pwd)
first_test=${test_sets%% *}
if [ ! -d "$corpus/$first_test" ] && [ -d "$corpus/LibriSpeech" ]; then
  corpus=$corpus/LibriSpeech  # given the folder the archives were unpacked in
fi
name=$(basename "$config" .yaml)
data=${data:-data/librispeech/$name}
exp=${exp:-exp/librispeech/$name}
all_sets="$train_sets $dev_sets $test_sets"
view=$data/corpus

if in_stages 0; then
  echo "stage 0: check $corpus; link $all_sets into $view"
  for s in $all_sets; do
    [ -d "$corpus/$s" ] || die "$corpus/$s not found: unpack $s.tar.gz from https://www.openslr.org/12 into" \
      "$corpus/.., or leave $s out of --train-sets/--dev-sets/--test-sets"
  done
  if [ -f "$view/.source" ] && [ "$(cat "$view/.source")" != "$corpus" ]; then
    rm -rf "$view"  # the links point into another corpus folder: make them afresh
  fi
  mkdir -p "$view"
  rm -rf "$view"/.*.tmp  # half-made links of an interrupted run
  echo "$corpus" > "$view/.source"
  for old in "$view"/*/; do
    [ -d "$old" ] || continue
    case " $all_sets " in *" $(basename "$old") "*) ;; *) rm -rf "$old" ;; esac  # a subset no longer chosen
  done
  for s in $all_sets; do
    if [ ! -d "$view/$s" ]; then
      # A tree of real folders holding symlinks to the files: `asr prepare` does not follow symlinked folders.
      cp -rs "$corpus/$s/." "$view/.$s.tmp"
      mv "$view/.$s.tmp" "$view/$s"
    fi
  done
fi

if in_stages 1; then
  echo "stage 1: asr prepare $view -> $data"
  $asr prepare "$view" --out "$data" --config "$config" --format librispeech --jobs "$jobs" \
    ${overrides[@]+"${overrides[@]}"}
fi

if in_stages 2; then
  if [ -f "$exp/.done" ]; then
    echo "stage 2: $exp is trained already (delete $exp/.done to train again)"
  else
    resume=()
    if [ -f "$exp/checkpoint/state.json" ]; then
      resume=(--resume)
      echo "stage 2: asr train, resuming $exp"
    else
      echo "stage 2: asr train -> $exp"
    fi
    $asr train --config "$config" --data "$data" --out "$exp" ${overrides[@]+"${overrides[@]}"} \
      ${resume[@]+"${resume[@]}"}
    touch "$exp/.done"
  fi
fi

split_of() { case $1 in dev-*) echo dev ;; train-*) echo train ;; *) echo test ;; esac; }  # as asr prepare

if in_stages 3; then
  mkdir -p "$exp/eval"
  reports=()
  for s in $test_sets; do
    echo "stage 3: asr eval on $s"
    $asr eval --model "$exp/bundle" --data "$data" --split "$(split_of "$s")" --subset "$s" \
      --report "$exp/eval/$s.json"
    reports+=("$exp/eval/$s.json")
  done
  "$python" - "$exp/results.md" "${reports[@]}" <<'EOF'
import json, sys
rows = ["| test set | utterances | hours | WER % | CER % |", "|---|---:|---:|---:|---:|"]
for path in sys.argv[2:]:
    r = json.load(open(path, encoding="utf-8"))
    rows.append(f"| {r['subset']} | {r['n_utts']} | {r['audio_seconds'] / 3600:.2f} | {100 * r['wer']:.2f} "
                f"| {100 * r['cer']:.2f} |")
open(sys.argv[1], "w", encoding="utf-8").write("\n".join(rows) + "\n")
print("\n".join(rows))
EOF
  echo "results: $exp/results.md"
fi

if in_stages 4; then
  manifest=$data/$(split_of "$first_test").jsonl
  sample=$("$python" - "$manifest" "$first_test" <<'EOF'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    row = json.loads(line)
    if row.get("subset") == sys.argv[2]:
        print(row["audio"]); print(row["text"]); break
EOF
)
  [ -n "$sample" ] || die "$manifest has no $first_test utterance to transcribe"
  audio=$(sed -n 1p <<< "$sample")
  echo "stage 4: asr transcribe $audio"
  hyp=$($asr transcribe "$exp/bundle" "$audio")
  echo "reference:  $(sed -n 2p <<< "$sample")"
  echo "transcript: $hyp"
fi
