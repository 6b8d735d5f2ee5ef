#!/usr/bin/env bash
# Adapt a trained model to your own speech: fine-tune a bundle on a few minutes of recordings, and score it before
# and after on held-out recordings of the same speaker(s).
#
#   recipes/adapt/run.sh MY_SPEECH                       # fine-tune the bundled en-synth model
#   recipes/adapt/run.sh MY_SPEECH --base exp/x/bundle   # or any bundle `asr train` wrote
#
# MY_SPEECH is a folder of recordings, each with a same-named .txt transcript beside it (a.wav + a.txt; any
# format libsndfile reads, any sample rate), or any corpus layout `asr prepare` reads. See README.md beside this
# script for how many sentences to record. Nothing is downloaded and the corpus is never modified.
# Stages (run a range with --stage N --stop-stage M; every stage can be re-run, and skips or reuses finished work):
#   0  check the corpus
#   1  asr prepare --like BASE   features, text rules and vocabulary of the base model; a seeded split into
#                                train / dev / test (10 % each for dev and test unless --set prepare.*_fraction=...)
#   2  asr eval                  the base model on the test split: EXP/eval/before.json
#   3  asr train --init BASE     fine-tune (configs/finetune.yaml) into EXP: the epoch count chosen on dev, then
#                                the final model on train + dev (train.refit), twice with two seeds and their
#                                weights averaged (train.soup); resumes after an interruption
#   4  asr eval                  the adapted model on the test split: EXP/eval/after.json
#   5  asr lm + asr eval         a word 3-gram LM of the train and dev transcripts and general English (--lm-text;
#                                default: Debian's fortunes, if installed), beam search with it (decode section of
#                                --config): EXP/eval/after-lm.json (needs `pip install '.[lm]'`; skipped without it)
#   6  results table             EXP/results.md
#   7  asr transcribe            the first test recording, with the adapted model
#
# Options:
#   --base BUNDLE          the model to adapt: a bundle directory or a bundled model name (default: en-synth)
#   --config FILE          fine-tuning config (default: configs/finetune.yaml)
#   --data DIR, --exp DIR  outputs (default: data/adapt/<corpus folder name>, exp/adapt/<corpus folder name>)
#   --jobs N               feature-extraction processes (default 0: all cores)
#   --lm-text FILE         sentences (one a line) to build the LM from besides the transcripts: text of your domain
#                          and general English (default: sentences of /usr/share/games/fortunes, `apt-get install
#                          fortunes`; none if it is missing)
#   --set SECTION.KEY=VAL  config override for prepare and train (repeatable), e.g. --set train.epochs=10
#   --stage N, --stop-stage M   first and last stage to run (default 0 and 7)
# Environment: ASR (default: asr) is the toolkit command; PYTHON (default: python3) writes the results table.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../lib.sh
source "$here/../lib.sh"  # option parsing, in_stages, die and the train stage
stop_stage=7
config=$here/../../configs/finetune.yaml
base=en-synth
lm_text=""

case ${1:-} in -*|"") ;; *) data=data/adapt/$(basename "$1"); exp=exp/adapt/$(basename "$1") ;; esac  # defaults
corpus_recipe_args "the folder of your recordings" "a folder of audio files with same-named .txt transcripts" \
  "base lm-text" "$@"

if in_stages 0; then
  echo "stage 0: check $corpus"
  n=$(find "$corpus" -type f \( -iname '*.wav' -o -iname '*.flac' -o -iname '*.mp3' -o -iname '*.ogg' \) | wc -l)
  [ "$n" -gt 0 ] || die "$corpus: no audio files (.wav, .flac, .mp3, .ogg) found"
  echo "$n audio files"
fi

if in_stages 1; then
  echo "stage 1: asr prepare $corpus --like $base -> $data"
  $asr prepare "$corpus" --out "$data" --like "$base" --jobs "$jobs" ${overrides[@]+"${overrides[@]}"}
fi

# adapt_eval N NAME MODEL [ARG...]: asr eval of MODEL on the test split -> EXP/eval/NAME.json (+ .jsonl per utterance)
adapt_eval() {
  local n=$1 report=$2 model=$3
  shift 3
  echo "stage $n: asr eval $model on the test split -> $exp/eval/$report.json"
  mkdir -p "$exp/eval"
  $asr eval --model "$model" --data "$data" --split test --report "$exp/eval/$report.json" \
    --utts "$exp/eval/$report.jsonl" --worst 3 "$@"
}

if in_stages 2; then adapt_eval 2 before "$base"; fi
train_stage 3 --init "$base"
if in_stages 4; then adapt_eval 4 after "$exp/bundle"; fi

if in_stages 5; then
  if "$python" -c "import kenlm, pyctcdecode, arpabo" 2>/dev/null; then
    if [ -z "$lm_text" ] && [ -d /usr/share/games/fortunes ]; then
      lm_text=$exp/general-english.txt
      "$python" "$here/local/synth_text.py" 2>/dev/null | cut -f2 > "$lm_text"
    fi
    texts=()
    if [ -n "$lm_text" ]; then texts=(--text "$lm_text"); else
      echo "note: an LM of the transcripts alone knows few words; give --lm-text FILE or apt-get install fortunes"
    fi
    echo "stage 5: asr lm $data --split train --split dev ${texts[*]+"${texts[*]}"} -> $exp/lm.arpa"
    $asr lm "$data" --split train --split dev --out "$exp/lm.arpa" ${texts[@]+"${texts[@]}"}
    adapt_eval 5 after-lm "$exp/bundle" --lm "$exp/lm.arpa" --config "$config"
  else
    echo "stage 5: skipped: the LM needs the optional packages: pip install '.[lm]'"
  fi
fi

if in_stages 6; then
  echo "stage 6: results -> $exp/results.md"
  "$python" "$here/local/results_table.py" "$exp/results.md" "$exp"/eval/{before,after,after-lm}.json
fi

transcribe_stage 7 "$data/test.jsonl"
