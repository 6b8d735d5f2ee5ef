# shellcheck shell=bash
# What the recipes/*/run.sh scripts share: option parsing, the stage gate, and the asr prepare / train / eval /
# transcribe stages. Sourced, not run: a run.sh sets `set -euo pipefail` and `here` (its own folder), then
#
#   source "$here/../lib.sh"
#
# which sets the defaults below; the run.sh then sets stop_stage and its own options' defaults, parses its command
# line with corpus_recipe_args or parse_options, and runs its stages, each gated by in_stages.

asr=${ASR:-asr}  # left unquoted below on purpose: ASR="python -m asr" works too
python=${PYTHON:-python3}
# shellcheck disable=SC2154  # here: the sourcing run.sh's folder
recipe=$(basename "$here")  # outputs default to data/<recipe>/<config name> and exp/<recipe>/<config name>
stage=0
config=$here/cpu.yaml
data=""
exp=""
overrides=()

# The header comment of the run.sh (all but its first line), which documents it.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "run.sh: error: $*" >&2; exit 2; }
# shellcheck disable=SC2154  # stop_stage: set by the run.sh, after sourcing this
in_stages() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

# parse_options "NAME..." ARGS...: ARGS are pairs `--NAME VALUE`. --set appends `--set VALUE` to overrides; --stage,
# --stop-stage, --config, --data, --exp and each NAME given set the variable of that name (dashes as underscores).
parse_options() {
  local _names="stage stop-stage config data exp $1" _name _known
  shift
  while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || die "option $1 needs a value (see --help)"
    if [ "$1" = --set ]; then
      overrides+=(--set "$2")
    else
      _known=""
      for _name in $_names; do
        if [ "$1" = "--$_name" ]; then _known=$_name; fi
      done
      [ -n "$_known" ] || die "unknown option $1 (see --help)"
      printf -v "${_known//-/_}" '%s' "$2"
    fi
    shift 2
  done
}

# Checks the stage numbers and --config, and gives DATA and EXP their defaults.
config_and_outputs() {
  local n
  for n in "$stage" "$stop_stage"; do
    case $n in ''|*[!0-9]*) die "--stage and --stop-stage take a whole number, got '$n'" ;; esac
  done
  [ -f "$config" ] || die "config file not found: $config"
  local name
  name=$(basename "$config" .yaml)
  data=${data:-data/$recipe/$name}
  exp=${exp:-exp/$recipe/$name}
}

# corpus_recipe_args WHAT HINT "NAME..." ARGS...: the command line of a recipe whose first argument is the corpus
# folder (WHAT, in the error for an option there) and whose options are parse_options's, --jobs and --NAME.
# Sets corpus (absolute), checks the numbers, the config and the corpus folder (HINT: where the corpus is to be had).
corpus_recipe_args() {
  local what=$1 hint=$2 names=$3 n
  shift 3
  case ${1:-} in
    "" ) usage >&2; exit 2 ;;
    -h|--help ) usage; exit 0 ;;
    -* ) die "the first argument is $what, got option $1 (see --help)" ;;
  esac
  corpus=$1
  shift
  jobs=0  # feature-extraction processes; 0: all cores
  parse_options "jobs $names" "$@"
  for n in "$stage" "$stop_stage" "$jobs"; do
    case $n in ''|*[!0-9]*) die "--stage, --stop-stage and --jobs take a whole number, got '$n'" ;; esac
  done
  config_and_outputs
  [ -d "$corpus" ] || die "corpus folder not found: $corpus ($hint)"
  corpus=$(cd "$corpus" && pwd)
}

# prepare_stage N SOURCE FORMAT JOBS: asr prepare SOURCE (a corpus of FORMAT) -> DATA.
prepare_stage() {
  in_stages "$1" || return 0
  echo "stage $1: asr prepare $2 -> $data"
  $asr prepare "$2" --out "$data" --config "$config" --format "$3" --jobs "$4" ${overrides[@]+"${overrides[@]}"}
}

# train_stage N [ARG...]: asr train -> EXP (with ARGs, e.g. --init BUNDLE), resuming from EXP/checkpoint after an
# interruption (also from .checkpoint.old, which a kill while the checkpoint was replaced leaves and asr train puts
# back); skipped once finished.
train_stage() {
  in_stages "$1" || return 0
  local n=$1
  shift
  if [ -f "$exp/.done" ]; then
    echo "stage $n: $exp is trained already (delete $exp/.done to train again)"
    return 0
  fi
  local how=()
  if [ -f "$exp/checkpoint/state.json" ] || [ -f "$exp/.checkpoint.old/state.json" ]; then
    how=(--resume)
    echo "stage $n: asr train, resuming $exp"
  elif [ -d "$exp/bundle" ] || [ -d "$exp/.bundle.old" ]; then
    how=(--overwrite)  # killed after its first bundle, before its first checkpoint: nothing to resume from
    echo "stage $n: asr train -> $exp (afresh: it has no checkpoint to resume from)"
  else
    echo "stage $n: asr train -> $exp"
  fi
  $asr train --config "$config" --data "$data" --out "$exp" "$@" ${overrides[@]+"${overrides[@]}"} \
    ${how[@]+"${how[@]}"}
  touch "$exp/.done"
}

# eval_stage N COLUMNS SPLIT[:SUBSET]...: asr eval of EXP/bundle on each SPLIT of DATA, or on its SUBSET only, into
# EXP/eval/<SUBSET or SPLIT>.json, per-utterance results beside it (.jsonl); then the table EXP/results.md, a row
# per report, with COLUMNS (of: hours wer cer).
eval_stage() {
  in_stages "$1" || return 0
  local n=$1 columns=$2 item split subset reports=()
  shift 2
  mkdir -p "$exp/eval"
  for item in "$@"; do
    split=${item%%:*}
    if [ "$split" = "$item" ]; then
      echo "stage $n: asr eval on the $split split"
      $asr eval --model "$exp/bundle" --data "$data" --split "$split" --report "$exp/eval/$split.json" \
        --utts "$exp/eval/$split.jsonl"
      reports+=("$exp/eval/$split.json")
    else
      subset=${item#*:}
      echo "stage $n: asr eval on $subset"
      $asr eval --model "$exp/bundle" --data "$data" --split "$split" --subset "$subset" \
        --report "$exp/eval/$subset.json" --utts "$exp/eval/$subset.jsonl"
      reports+=("$exp/eval/$subset.json")
    fi
  done
  "$python" "$here/../local/results_table.py" "$columns" "$exp/results.md" "${reports[@]}"
  echo "results: $exp/results.md"
}

# transcribe_stage N MANIFEST [SUBSET]: asr transcribe the first utterance of MANIFEST (of its SUBSET, if given) with
# EXP/bundle, and show it beside its reference transcript.
transcribe_stage() {
  in_stages "$1" || return 0
  local n=$1 manifest=$2 subset=${3:-} sample audio hyp
  sample=$("$python" "$here/../local/first_utterance.py" "$manifest" "$subset")
  if [ -z "$sample" ]; then
    if [ -n "$subset" ]; then die "$manifest has no $subset utterance to transcribe"; fi
    die "$manifest is empty: nothing to transcribe"
  fi
  audio=$(sed -n 1p <<< "$sample")
  echo "stage $n: asr transcribe $audio"
  hyp=$($asr transcribe -m "$exp/bundle" "$audio")
  echo "reference:  $(sed -n 2p <<< "$sample")"
  echo "transcript: $hyp"
}
