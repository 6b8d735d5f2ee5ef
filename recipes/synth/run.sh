#!/usr/bin/env bash
# Synthetic English recipe: fortunes sentences spoken by espeak-ng, flite, festival, mbrola and pico voices -> augmented
# training corpus -> prepare -> train -> CER/WER on seen and unseen voices, clean and telephone -> transcribe.
#
#   recipes/synth/run.sh                                   # everything, with the defaults below
#   recipes/synth/run.sh --stop-stage 2                    # only make the corpus (data/synth-corpus)
#   recipes/synth/run.sh --n-train 300 --n-dev 30 --n-test 30 --n-unseen 30 --corpus data/synth-small
#
# Run from the repository root. Nothing is downloaded; the synthesisers are Debian packages. Stages (run a range
# with --stage N --stop-stage M; every stage can be re-run, and skips or reuses finished work):
#   0  check the synthesisers, voices, sox and fortunes text; install them with apt-get when run as root (on Debian
#      this enables the contrib and non-free components, where the mbrola and pico voices live)
#   1  synthesise CORPUS/{train,dev,test-seen,test-unseen}  (local/synth_corpus.py; resumable)
#   2  telephone copies of the test sets: CORPUS/test-seen-phone, CORPUS/test-unseen-phone
#   3  augmented training corpus CORPUS-aug: CORPUS plus --copies augmented copies of train (local/augment_corpus.py)
#   4  asr prepare CORPUS-aug -> DATA
#   5  asr train -> EXP (resumes after an interruption; skipped once finished)
#   6  asr eval on each test set -> EXP/eval/<set>.json and the table EXP/results.md; CER/WER per engine and voice
#      -> EXP/results-by-voice.md (local/synth_by_voice.py)
#   7  asr transcribe the first test-unseen utterance
#
# Options:
#   --corpus DIR           generated corpus (default: data/synth-corpus; the augmented one is DIR-aug)
#   --n-train N, --n-dev N, --n-test N, --n-unseen N   utterances per split (default 15000, 300, 300, 300)
#   --seed N               seeds sentences, voices, speed, pitch, level and augmentation (default 0)
#   --engines LIST         synthesisers (default: espeak-ng,flite,festival,mbrola,pico; the voice-disjoint test set
#                          is spoken by held-out espeak-ng, flite and festival voices whichever engines train;
#                          add mbrola-accent for 16 more recorded speakers reading English with a foreign accent)
#   --effects LIST         training augmentation (default: speed,reverb,noise,telephone)
#   --prob P, --copies N   probability of each effect per copy, copies per utterance (default 0.5, 1)
#   --ranges "NAME=LO,HI ..."  effect parameter ranges other than local/augment_corpus.py's (default: speed=0.8,1.2)
#   --augmented DIR        the augmented training corpus of stage 3 (default: CORPUS-aug)
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
# shellcheck source=SCRIPTDIR/../lib.sh
source "$here/../lib.sh"  # option parsing, in_stages, die and the prepare / train / eval stages
if [ -x "$root/.venv/bin/python" ]; then python=${PYTHON:-$root/.venv/bin/python}; fi
stop_stage=7
corpus=data/synth-corpus
n_train=15000
n_dev=300
n_test=300
n_unseen=300
seed=0
effects=speed,reverb,noise,telephone
prob=0.5
copies=1
workers=2
engines=espeak-ng,flite,festival,mbrola,pico

case ${1:-} in -h|--help) usage; exit 0 ;; esac
ranges="speed=0.8,1.2"
augmented=""
parse_options "corpus n-train n-dev n-test n-unseen seed engines effects prob copies ranges augmented workers" "$@"
config_and_outputs
augmented=${augmented:-${corpus%/}-aug}
range_args=()
for r in $ranges; do range_args+=(--range "$r"); done

# The mbrola and pico voices (and festival's rab and MBROLA ones) are in Debian's contrib and non-free components,
# which a stock Debian does not list: add them in a file of our own, once. Elsewhere (Ubuntu: universe/multiverse)
# the user enables them, or picks --engines without them.
enable_contrib_non_free() {
  local list=/etc/apt/sources.list.d/asr-synth-contrib-non-free.sources codename
  [ -r /etc/os-release ] && grep -qx 'ID=debian' /etc/os-release || return 0
  [ -e "$list" ] && return 0
  # shellcheck source=/dev/null
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  [ -n "$codename" ] || return 0
  echo "stage 0: enabling Debian's contrib and non-free components ($list)"
  printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: contrib non-free\nSigned-By: %s\n' \
    "$codename" /usr/share/keyrings/debian-archive-keyring.gpg > "$list"
}

if in_stages 0; then
  echo "stage 0: check the synthesisers, voices and fortunes text"
  if ! "$python" "$here/local/synth_corpus.py" --out "$corpus" --engines "$engines" --check; then
    packages="$("$python" "$here/local/synth_corpus.py" --out "$corpus" --engines "$engines" --packages) fortunes"
    [ "$(id -u)" -eq 0 ] || die "run as root, or install them first (see the hint above): apt-get install -y $packages"
    enable_contrib_non_free
    echo "stage 0: installing $packages"
    # shellcheck disable=SC2086  # $packages is a list of names
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $packages
    "$python" "$here/local/synth_corpus.py" --out "$corpus" --engines "$engines" --check \
      || die "still missing after apt-get install"
  fi
fi

if in_stages 1; then
  echo "stage 1: synthesise $corpus"
  "$python" "$here/local/synth_corpus.py" --out "$corpus" --seed "$seed" --n-train "$n_train" --n-dev "$n_dev" \
    --n-test "$n_test" --n-unseen "$n_unseen" --engines "$engines" --workers "$workers"
fi

if in_stages 2; then
  echo "stage 2: telephone copies of test-seen and test-unseen"
  "$python" "$here/local/augment_corpus.py" --in "$corpus" --out "$corpus" --folders test-seen,test-unseen \
    --suffix=-phone --effects telephone --seed "$seed" --workers "$workers"
fi

if in_stages 3; then
  echo "stage 3: $augmented = $corpus + $copies augmented copies of train ($effects, each with p=$prob; $ranges)"
  "$python" "$here/local/augment_corpus.py" --in "$corpus" --out "$augmented" --folders train \
    --effects "$effects" --prob "$prob" --copies "$copies" --seed "$seed" --workers "$workers" \
    ${range_args[@]+"${range_args[@]}"}
fi

prepare_stage 4 "$augmented" librispeech "$workers"
train_stage 5
eval_stage 6 "cer wer" test:test-seen test:test-unseen test:test-seen-phone test:test-unseen-phone
if in_stages 6; then
  "$python" "$here/local/synth_by_voice.py" --corpus "$corpus" "$exp"/eval/test-{seen,unseen}{,-phone}.jsonl \
    > "$exp/results-by-voice.md"
  echo "per engine and voice: $exp/results-by-voice.md"
fi

if in_stages 7; then
  # shellcheck disable=SC2012  # the names are the corpus' own, [0-9a-z-] only; ls sorts them
  audio=$(ls "$corpus"/test-unseen/*/*/*.flac 2>/dev/null | head -n 1 || true)
  [ -n "$audio" ] || die "no test-unseen audio in $corpus to transcribe (run stage 1)"
  uid=$(basename "$audio" .flac)
  echo "stage 7: asr transcribe $audio"
  echo "reference:  $(grep -h "^$uid " "$(dirname "$audio")"/*.trans.txt | cut -d' ' -f2- | tr '[:upper:]' '[:lower:]')"
  transcript=$($asr transcribe -m "$exp/bundle" "$audio")  # a failure stops the script (set -e)
  echo "transcript: $transcript"
fi
