#!/usr/bin/env bash
# Mozilla Common Voice recipe: prepare -> train -> WER on test.tsv -> transcribe one test clip.
#
#   recipes/commonvoice/run.sh /data/cv-corpus-17.0-2024-03-15/en             # CPU variant, English
#   recipes/commonvoice/run.sh /data/cv-corpus-17.0-2024-03-15/en --config recipes/commonvoice/gpu.yaml
#
# CV_LANG_DIR is one language folder of a Common Voice release (clips/ and train.tsv, dev.tsv, test.tsv).
# Nothing is downloaded and the corpus is never modified. The release's own train/dev/test split is used
# (validated.tsv and the other tables are not read). Stages (run a range with --stage N --stop-stage M;
# every stage can be re-run, and skips or reuses finished work):
#   0  check the corpus
#   1  asr prepare    MP3 -> 16 kHz features, manifests, vocabulary in DATA
#   2  asr train      into EXP; resumes from EXP/checkpoint after an interruption; skipped once finished
#   3  asr eval       the test split: EXP/eval/test.json and the table EXP/results.md
#   4  asr transcribe the first test clip
#
# Options:
#   --config FILE          recipe config (default: cpu.yaml beside this script)
#   --data DIR, --exp DIR  outputs (default: data/commonvoice/<config name>, exp/commonvoice/<config name>)
#   --jobs N               feature-extraction processes (default 0: all cores)
#   --set SECTION.KEY=VAL  config override for prepare and train (repeatable), e.g. --set train.epochs=5
#   --stage N, --stop-stage M   first and last stage to run (default 0 and 4)
# Environment: ASR (default: asr) is the toolkit command; PYTHON (default: python3) writes the results table.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../lib.sh
source "$here/../lib.sh"  # option parsing, in_stages, die and the prepare / train / eval / transcribe stages
stop_stage=4

corpus_recipe_args "a Common Voice language folder" "Common Voice is at https://commonvoice.mozilla.org/datasets" \
  "" "$@"

if in_stages 0; then
  echo "stage 0: check $corpus"
  if [ ! -d "$corpus/clips" ]; then
    langs=$(for d in "$corpus"/*/clips; do if [ -d "$d" ]; then dirname "$d"; fi; done | awk 'NR <= 3' | tr '\n' ' ')
    die "$corpus has no clips/ folder: pass one language folder of the release${langs:+, e.g. ${langs% }}"
  fi
  for split in train dev test; do
    [ -f "$corpus/$split.tsv" ] || die "$corpus/$split.tsv not found: this recipe uses the release's own split"
    read -r header < "$corpus/$split.tsv" || true
    case $header in
      *path*sentence*) ;;
      *) die "$corpus/$split.tsv: expected a header naming the columns path and sentence, got: $header" ;;
    esac
  done
fi

prepare_stage 1 "$corpus" commonvoice "$jobs"
train_stage 2
eval_stage 3 "hours wer cer" test
transcribe_stage 4 "$data/test.jsonl"
