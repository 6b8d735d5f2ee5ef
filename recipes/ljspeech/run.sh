#!/usr/bin/env bash
# LJSpeech recipe: prepare -> train -> WER on the held-out test split -> transcribe one test clip.
#
#   recipes/ljspeech/run.sh /data/LJSpeech-1.1                           # CPU variant
#   recipes/ljspeech/run.sh /data/LJSpeech-1.1 --config recipes/ljspeech/gpu.yaml
#
# LJSPEECH_DIR is the folder LJSpeech-1.1.tar.bz2 unpacks to (metadata.csv and wavs/). Nothing is downloaded
# and the corpus is never modified. LJSpeech has no official split: `asr prepare` holds out
# prepare.dev_fraction and prepare.test_fraction of the clips by a seeded hash of the clip id (stable when
# rerun). Stages (run a range with --stage N --stop-stage M; every stage can be re-run, and skips or reuses
# finished work):
#   0  check the corpus
#   1  asr prepare    features, manifests, vocabulary in DATA (the normalised transcript column is used)
#   2  asr train      into EXP; resumes from EXP/checkpoint after an interruption; skipped once finished
#   3  asr eval       the test split: EXP/eval/test.json and the table EXP/results.md
#   4  asr transcribe the first test clip
#
# Options:
#   --config FILE          recipe config (default: cpu.yaml beside this script)
#   --data DIR, --exp DIR  outputs (default: data/ljspeech/<config name>, exp/ljspeech/<config name>)
#   --jobs N               feature-extraction processes (default 0: all cores)
#   --set SECTION.KEY=VAL  config override for prepare and train (repeatable), e.g. --set train.epochs=5
#   --stage N, --stop-stage M   first and last stage to run (default 0 and 4)
# Environment: ASR (default: asr) is the toolkit command; PYTHON (default: python3) writes the results table.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../lib.sh
source "$here/../lib.sh"  # option parsing, in_stages, die and the prepare / train / eval / transcribe stages
stop_stage=4

corpus_recipe_args "the LJSpeech-1.1 folder" "LJSpeech is at https://keithito.com/LJ-Speech-Dataset/" "" "$@"
if [ ! -f "$corpus/metadata.csv" ] && [ -d "$corpus/LJSpeech-1.1" ]; then
  corpus=$corpus/LJSpeech-1.1  # given the folder the archive was unpacked in
fi

if in_stages 0; then
  echo "stage 0: check $corpus"
  if [ ! -f "$corpus/metadata.csv" ] || [ ! -d "$corpus/wavs" ]; then
    die "$corpus: expected metadata.csv and wavs/ (unpack LJSpeech-1.1.tar.bz2 and pass its LJSpeech-1.1 folder)"
  fi
fi

prepare_stage 1 "$corpus" ljspeech "$jobs"
train_stage 2
eval_stage 3 "hours wer cer" test
transcribe_stage 4 "$data/test.jsonl"
