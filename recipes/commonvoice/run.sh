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
asr=${ASR:-asr}  # left unquoted below on purpose: ASR="python -m asr" works too
python=${PYTHON:-python3}
stage=0
stop_stage=4
config=$here/cpu.yaml
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
  -* ) die "the first argument is a Common Voice language folder, got option $1 (see --help)" ;;
esac
corpus=$1
shift
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || die "option $1 needs a value (see --help)"
  case $1 in
    --stage) stage=$2 ;;
    --stop-stage) stop_stage=$2 ;;
    --config) config=$2 ;;
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
[ -d "$corpus" ] || die "corpus folder not found: $corpus (Common Voice is at https://commonvoice.mozilla.org/datasets)"
corpus=$(cd "$corpus" && pwd)
name=$(basename "$config" .yaml)
data=${data:-data/commonvoice/$name}
exp=${exp:-exp/commonvoice/$name}

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

if in_stages 1; then
  echo "stage 1: asr prepare $corpus -> $data"
  $asr prepare "$corpus" --out "$data" --config "$config" --format commonvoice --jobs "$jobs" \
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

if in_stages 3; then
  echo "stage 3: asr eval on the test split"
  mkdir -p "$exp/eval"
  $asr eval --model "$exp/bundle" --data "$data" --split test --report "$exp/eval/test.json"
  "$python" - "$exp/results.md" "$exp/eval/test.json" <<'EOF'
import json, sys
rows = ["| test set | utterances | hours | WER % | CER % |", "|---|---:|---:|---:|---:|"]
for path in sys.argv[2:]:
    r = json.load(open(path, encoding="utf-8"))
    rows.append(f"| {r.get('subset') or r['split']} | {r['n_utts']} | {r['audio_seconds'] / 3600:.2f} "
                f"| {100 * r['wer']:.2f} | {100 * r['cer']:.2f} |")
open(sys.argv[1], "w", encoding="utf-8").write("\n".join(rows) + "\n")
print("\n".join(rows))
EOF
  echo "results: $exp/results.md"
fi

if in_stages 4; then
  sample=$("$python" - "$data/test.jsonl" <<'EOF'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    row = json.loads(line)
    print(row["audio"]); print(row["text"]); break
EOF
)
  [ -n "$sample" ] || die "$data/test.jsonl is empty: nothing to transcribe"
  audio=$(sed -n 1p <<< "$sample")
  echo "stage 4: asr transcribe $audio"
  hyp=$($asr transcribe "$exp/bundle" "$audio")
  echo "reference:  $(sed -n 2p <<< "$sample")"
  echo "transcript: $hyp"
fi
