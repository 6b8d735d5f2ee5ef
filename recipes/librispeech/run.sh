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
# shellcheck source=SCRIPTDIR/../lib.sh
source "$here/../lib.sh"  # option parsing, in_stages, die and the prepare / train / eval / transcribe stages
stop_stage=4
train_sets="train-clean-100"
dev_sets="dev-clean dev-other"
test_sets="test-clean test-other"

corpus_recipe_args "the LibriSpeech folder" "LibriSpeech is at https://www.openslr.org/12" \
  "train-sets dev-sets test-sets" "$@"
first_test=${test_sets%% *}
if [ ! -d "$corpus/$first_test" ] && [ -d "$corpus/LibriSpeech" ]; then
  corpus=$corpus/LibriSpeech  # given the folder the archives were unpacked in
fi
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

prepare_stage 1 "$view" librispeech "$jobs"
train_stage 2

split_of() { case $1 in dev-*) echo dev ;; train-*) echo train ;; *) echo test ;; esac; }  # as asr prepare
test_splits=()
for s in $test_sets; do test_splits+=("$(split_of "$s"):$s"); done
eval_stage 3 "hours wer cer" "${test_splits[@]}"
transcribe_stage 4 "$data/$(split_of "$first_test").jsonl" "$first_test"
