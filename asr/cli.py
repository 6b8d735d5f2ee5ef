"""The `asr` command line: thin wrappers that validate arguments, build the config, call one function.

    asr --help
    asr prepare recipes/demo/corpus --out data/demo --config configs/demo.yaml
    asr train --config configs/demo.yaml
    asr eval --model exp/demo/bundle --data data/demo --report exp/demo/report.json
    asr transcribe -m exp/demo/bundle some.wav --json
    arecord -f S16_LE -r 16000 | asr transcribe --stream -
    asr listen
    asr models
    asr --version
    asr export exp/demo/bundle --format tflite
    asr lm data/demo --out exp/demo/lm.arpa
    asr inspect data/demo --config configs/demo.yaml
    asr align exp/demo/bundle some.wav "six two" --plot align.png

TensorFlow is imported inside the commands that need it, so `asr --help` is instant. A user mistake
(`AsrError`) prints one line on stderr and exits with status 2; no traceback.
"""

from __future__ import annotations

import collections
import functools
import json
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from asr.errors import AsrError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, score and use character-level CTC speech recognisers.")

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config (see configs/).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a config key: SECTION.KEY=VALUE.")]
BeamOpt = Annotated[Optional[int], typer.Option(help="1 = greedy; > 1 = prefix beam search (decode.beam_width).")]
LmOpt = Annotated[Optional[Path], typer.Option(help="Word n-gram LM (ARPA) for beam search (decode.lm_path).")]


def _print_version(value: bool) -> None:
    if value:
        from asr import __version__

        typer.echo(f"asr {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Options that come before the command."""


def user_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn AsrError into a one-line message on stderr and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AsrError as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted; re-run the same command to resume", err=True)
            raise typer.Exit(130) from None

    return wrapper


@app.command()
@user_errors
def prepare(
    corpus_dir: Annotated[Path, typer.Argument(help="Corpus folder (LibriSpeech, LJSpeech, Common Voice, ...).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Data directory to write.")] = Path("data/demo"),
    config: ConfigOpt = None,
    set_: SetOpt = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="Force a corpus format instead of detecting it.")]
    = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Worker processes (0 = all cores).")] = 0,
    strict: Annotated[bool, typer.Option(help="Fail on characters outside the alphabet instead of skipping.")]
    = False,
    num_shards: Annotated[int, typer.Option(help="Split the work across this many machines.")] = 1,
    shard_index: Annotated[int, typer.Option(help="This machine's part, 0 .. num-shards - 1.")] = 0,
    like: Annotated[Optional[str], typer.Option(help="Prepare for fine-tuning this bundle (path or bundled name): "
                                                     "its features, text rules and vocabulary.")] = None,
    grow_vocab: Annotated[bool, typer.Option(help="With --like: add characters the bundle lacks to the vocabulary "
                                                  "instead of skipping their transcripts.")] = False,
    split_as: Annotated[Optional[str], typer.Option(help="Put the whole corpus in this split (train, dev or test), "
                                                         "e.g. test for a corpus only to score.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Delete what an earlier prepare wrote in --out first (needed when "
                                                 "it was prepared from another corpus folder).")] = False,
) -> None:
    """Read a corpus, normalise and split it, extract MFCC features, write manifests and vocabulary."""
    from asr.config import load_config, with_options
    from asr.prepare import prepare as run_prepare

    if grow_vocab and like is None:
        raise AsrError("--grow-vocab extends a bundle's vocabulary: give the bundle with --like BUNDLE")
    cfg = with_options(load_config(config, set_ or []), {"--split-as": ("prepare.split_as", split_as)})
    parent = None
    if like is not None:
        from asr.finetune import like_config, read_parent

        parent = read_parent(like)
        cfg = like_config(cfg, parent)
    result = run_prepare(corpus_dir, out, cfg, fmt, jobs, strict, num_shards, shard_index,
                         progress=sys.stderr.isatty(),  # a bar's \r updates would fill a log file
                         base_vocab=parent.vocab if parent else None, grow_vocab=grow_vocab, overwrite=overwrite)
    if not result.counts:
        typer.echo(f"shard {shard_index}/{num_shards} done; run once more without --num-shards to finish {out}")
        return
    for split, n in result.counts.items():
        typer.echo(f"{split:>6}: {n} utterances, {result.hours[split]:.2f} h")
    if not result.counts["train"] and cfg.prepare.split_as not in ("dev", "test"):
        typer.echo("warning: no training utterances: this data can be scored (`asr eval --data`), not trained on")
    typer.echo(f"shards: {result.total_shards} ({result.reused_shards} reused from an earlier run)")
    if result.unseen:
        chars = "".join(sorted(set("".join(result.unseen.values()))))
        typer.echo(f"warning: {len(result.unseen)} dev/test utterances use characters no training transcript has "
                   f"({chars!r}); they are kept and scored, but the model cannot emit them")
    reasons = collections.Counter(s.reason for s in result.skipped)
    if reasons:
        summary = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
        typer.echo(f"skipped {len(result.skipped)}: {summary} (details: {out / 'skipped.jsonl'})")
    typer.echo(f"wrote {out}")


@app.command()
@user_errors
def train(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    data: Annotated[Optional[Path], typer.Option(help="Prepared data (overrides train.data_dir).")] = None,
    out: Annotated[Optional[Path], typer.Option(help="Run directory (overrides train.out_dir).")] = None,
    init: Annotated[Optional[str], typer.Option(help="Fine-tune this bundle (path or bundled name, e.g. en-synth): "
                                                     "its architecture, weights and CMVN; the config defaults to "
                                                     "configs/finetune.yaml. Prepare the data with --like.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the run directory's last checkpoint (after a crash, "
                                              "Ctrl-C or kill: loses at most train.checkpoint_minutes).")] = False,
    overwrite: Annotated[bool, typer.Option(help="Train afresh in a run directory that holds an earlier run: delete "
                                                 "its checkpoint, bundle and logs first (without --resume or "
                                                 "--overwrite such a directory is refused).")] = False,
) -> None:
    """Train a BiLSTM-CTC model; the best model by dev CER is written as a bundle (with train.refit, as in the
    fine-tuning preset: the model trained again on train + dev for that best epoch count; with train.soup N, the
    average of N such models trained with different seeds).

    The run directory gets log.csv, curves.png and tensorboard/; train.strategy=mirrored|multi_worker trains on
    several devices or machines (see the README).
    """
    from asr.config import load_config, with_options
    from asr.runtime import import_tensorflow

    if init is not None:
        from asr.finetune import load_init_config, read_parent

        cfg = load_init_config(config, set_ or [], read_parent(init))
    else:
        cfg = load_config(config, set_ or [])  # a mistyped key fails here, before TensorFlow's ~3 s import
    cfg = with_options(cfg, {"--data": ("train.data_dir", data and str(data)),
                             "--out": ("train.out_dir", out and str(out))})
    import_tensorflow()
    from asr.train import train as run_train

    try:
        bundle = run_train(cfg, resume, verbose=1 if sys.stderr.isatty() else 2, overwrite=overwrite)
    except KeyboardInterrupt:
        typer.echo("interrupted; continue from the last checkpoint: the same command with --resume", err=True)
        raise typer.Exit(130) from None
    typer.echo(f"best model: {bundle}")


@app.command("eval")
@user_errors
def eval_(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model bundle directory.")],
    data: Annotated[Optional[Path], typer.Option("--data", "-d", help="Prepared data directory.")] = None,
    corpus: Annotated[Optional[Path], typer.Option(help="Or: a corpus directory that was never prepared.")]
    = None,
    split: Annotated[Optional[str], typer.Option(help="Split to score: train, dev or test (--data: test; "
                                                      "--corpus: all).")] = None,
    report: Annotated[Optional[Path], typer.Option(help="Write the JSON report here.")] = None,
    utts: Annotated[Optional[Path], typer.Option(help="Write per-utterance results here (.csv or .jsonl).")]
    = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    beam_width: BeamOpt = None,
    lm: LmOpt = None,
    subset: Annotated[Optional[str], typer.Option(help="Score only this corpus subset, e.g. test-clean.")] = None,
    worst: Annotated[int, typer.Option(help="List this many worst utterances.")] = 10,
) -> None:
    """Decode a prepared split (or a raw corpus) and report CER/WER, errors per utterance and speed."""
    from asr.runtime import import_tensorflow

    decode = _decode_config(config, set_, beam_width, lm)
    import_tensorflow()
    from asr.bundle import load_bundle
    from asr.evaluate import evaluate, format_report, write_utterances
    from asr.files import write_json

    if data is not None and corpus is not None:
        raise AsrError("pass --data (prepared) or --corpus (raw), not both")
    result = evaluate(load_bundle(model), data if corpus is None else None, split or (None if corpus else "test"),
                      subset=subset, decode=decode, corpus=corpus, n_worst=worst,
                      progress=sys.stderr.isatty())  # a bar's \r updates would fill a log file
    typer.echo(format_report(result))
    if utts:
        write_utterances(result["utterances"], utts)
        typer.echo(f"utterances: {utts}")
    if report:
        write_json(report, result)
        typer.echo(f"report: {report}")


def _decode_config(config: Optional[Path], set_: Optional[list[str]], beam_width: Optional[int],
                   lm: Optional[Path]) -> Any:
    """The `decode` section of `--config`/`--set`, with the `--beam-width`/`--lm` shortcuts applied."""
    from asr.config import load_config, with_options

    cfg = with_options(load_config(config, set_ or []), {"--beam-width": ("decode.beam_width", beam_width),
                                                         "--lm": ("decode.lm_path", lm and str(lm))})
    return cfg.decode


@app.command()
@user_errors
def transcribe(
    inputs: Annotated[list[str], typer.Argument(
        help="Audio files, directories, glob patterns ('a/**/*.wav'), or - for standard input (WAV, AIFF, AU or "
             "OGG from a pipe; raw PCM with --rate).", metavar="FILE|DIR|GLOB|-...")],
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="Model bundle directory or bundled model name (`asr models` lists them; "
                              "default: the bundled default model).", metavar="BUNDLE")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="txt | json (one object per file and line, with "
                                                            "segments and word times) | srt | vtt | tsv.")] = "txt",
    json_: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    stream: Annotated[bool, typer.Option(
        "--stream", help="Print each utterance as a JSON line as soon as the pause after it is read "
                         "({path, start, end, text, words}); for live input: "
                         "`arecord -f S16_LE -r 16000 | asr transcribe --stream -`.")] = False,
    rate: Annotated[Optional[int], typer.Option(
        help="The inputs are raw 16-bit little-endian mono PCM at this many Hz, with no header "
             "(e.g. `arecord -t raw -f S16_LE -r 16000 | asr transcribe --rate 16000 -`).")] = None,
    output_dir: Annotated[Optional[Path], typer.Option(
        help="Write one transcript file per input here instead: x.wav -> DIR/x.<format>. When inputs share a name, "
             "every file keeps its folder below the inputs' common folder (a/x.wav -> DIR/a/x.txt, b/x.wav -> "
             "DIR/b/x.txt) and same-named files of one folder keep their suffix (c/y.wav, c/y.flac -> "
             "DIR/c/y.wav.txt, DIR/c/y.flac.txt).")]
    = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    beam_width: BeamOpt = None,
    lm: LmOpt = None,
    runtime: Annotated[str, typer.Option(help="auto | tf | litert (LiteRT runs the bundle's model.tflite, "
                                               "written by `asr train` or `asr export`).")]
    = "auto",
) -> None:
    """Print a transcript for each audio file; bad files are reported and the rest still transcribed.

    Audio is cut at pauses into utterances, each recognised as it ends; cues and JSON segments follow them.
    """
    from asr.bundle import DEFAULT_MODEL, bundle_dir
    from asr.files import write_text
    from asr.output import FORMATS, format_segment, format_transcript, output_paths
    from asr.recognize import Segment
    from asr.transcribe import expand_inputs, transcribe_inputs

    bundle = bundle_dir(model or DEFAULT_MODEL)  # a mistyped --model fails here, before any input is read
    fmt = "json" if json_ else fmt
    if fmt not in FORMATS:
        raise AsrError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if stream and (fmt != "json" and fmt != "txt" or output_dir is not None):
        raise AsrError("--stream prints one JSON line per utterance on standard output: leave out --format and "
                       "--output-dir")
    if rate is not None and rate <= 0:
        raise AsrError(f"--rate {rate}: expected a sample rate in Hz, e.g. 16000")
    decode = _decode_config(config, set_, beam_width, lm)
    paths, unmatched = expand_inputs(inputs)
    targets = output_paths(paths, output_dir, fmt) if output_dir is not None else {}  # clashes fail before any work
    for argument, reason in unmatched:
        typer.echo(f"skipped {argument}: {reason}", err=True)
    failed, many = len(unmatched), len(inputs) > 1 or not Path(inputs[0]).is_file()  # a folder or pattern: name each
    progress = sys.stderr.isatty() and not stream  # a bar's \r updates would fill a log file
    for path, item in transcribe_inputs(bundle, paths, decode, runtime, rate, progress):
        if isinstance(item, AsrError):
            failed += 1
            typer.echo(f"skipped {path}: {item}", err=True)
        elif isinstance(item, Segment):
            if stream:
                _echo(format_segment(path, item))
        elif output_dir is not None:
            write_text(targets[path], format_transcript(item, fmt) + "\n")
        elif not stream:
            _echo(format_transcript(item, fmt, with_path=many and inputs != ["-"]))
    if failed:
        typer.echo(f"{failed} input(s) failed", err=True)
        raise typer.Exit(1)


def _echo(line: str) -> None:
    """Print a result line on stdout (flushed), clearing and redrawing a progress bar on stderr around it."""
    from tqdm import tqdm

    with tqdm.external_write_mode(file=sys.stdout):
        typer.echo(line)


@app.command()
@user_errors
def listen(
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="Model bundle directory or bundled model name (default: the bundled default model).",
        metavar="BUNDLE")] = None,
    device: Annotated[Optional[str], typer.Option(help="Input device, a number or part of a name (default: the "
                                                       "system's; `python -m sounddevice` lists them).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON lines ({path, start, end, text, words}).")]
    = False,
    runtime: Annotated[str, typer.Option(help="auto | tf | litert.")] = "auto",
) -> None:
    """Transcribe the microphone: print each utterance as soon as you pause (Ctrl-C stops after printing the
    utterance in progress; a second Ctrl-C stops at once).

    Needs the `mic` extra: pip install 'asr\\[mic]' (sounddevice; PortAudio on Linux: apt-get install libportaudio2).
    """
    from asr.audio import microphone
    from asr.bundle import DEFAULT_MODEL, bundle_dir
    from asr.output import format_segment
    from asr.recognize import Recognizer

    recognizer = Recognizer(bundle_dir(model or DEFAULT_MODEL), runtime=runtime)
    rate = recognizer.info.features.sample_rate
    stop = threading.Event()
    blocks = microphone(rate, device, stop)  # a missing sounddevice or PortAudio fails here

    def first_ctrl_c(*_: object) -> None:  # ends the recording; what was said so far is still printed
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C stops at once

    previous = signal.signal(signal.SIGINT, first_ctrl_c)
    typer.echo("listening (Ctrl-C stops)", err=True)
    try:
        for segment in recognizer.segments(blocks, sample_rate=rate):
            typer.echo(format_segment("mic", segment) if json_ else segment.text)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, previous)
    typer.echo("stopped", err=True)


@app.command()
@user_errors
def models() -> None:
    """List the bundled models (names for `asr transcribe -m`), each with a one-line summary."""
    from asr.bundle import BUNDLED_MODELS, DEFAULT_MODEL, bundle_summary, bundled_models

    names = bundled_models()
    if not names:
        typer.echo(f"no bundled models are installed (in {BUNDLED_MODELS})")
    for name in names:
        typer.echo(f"{name}{' (default)' if name == DEFAULT_MODEL else ''}: {bundle_summary(BUNDLED_MODELS / name)}")


@app.command()
@user_errors
def export(
    model: Annotated[Path, typer.Argument(help="Model bundle directory.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="tflite (used by `asr transcribe`) | savedmodel.")]
    = "tflite",
    out: Annotated[Optional[Path], typer.Option(help="Output path (default: inside the bundle).")] = None,
) -> None:
    """Export the model (features -> per-frame log-probabilities) and check it against the bundle."""
    from asr.runtime import import_tensorflow

    import_tensorflow()
    from asr.bundle import load_bundle
    from asr.export import export as run_export
    from asr.export import max_difference

    bundle = load_bundle(model)
    path = run_export(bundle, fmt, out)
    typer.echo(f"wrote {path} (max |log p difference| vs the bundle: {max_difference(bundle, path, fmt):.2e})")


@app.command("lm")
@user_errors
def lm_(
    data: Annotated[Path, typer.Argument(help="Prepared data directory: its transcripts train the LM.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="ARPA file to write.")],
    order: Annotated[int, typer.Option(help="n-gram order.")] = 3,
    split: Annotated[Optional[list[str]], typer.Option(help="Split whose transcripts to use; repeat for several "
                                                            "(--split train --split dev). [default: train]")] = None,
    text: Annotated[Optional[list[Path]], typer.Option(help="Also these text files' sentences (one a line, "
                                                             "normalised like the transcripts).")] = None,
) -> None:
    """Build a word n-gram language model (ARPA) for `--lm` (needs the package's `lm` extra)."""
    from asr.lm import build_lm_from_data

    typer.echo(f"wrote {build_lm_from_data(data, out, order, split or ['train'], text or [])}")


@app.command("inspect")
@user_errors
def inspect_(
    data_dir: Annotated[Path, typer.Argument(help="Prepared data directory (output of `asr prepare`).")],
    config: ConfigOpt = None,
    set_: SetOpt = None,
    split: Annotated[str, typer.Option(help="Split to batch and summarise: train, dev or test.")] = "train",
    plot: Annotated[Optional[Path], typer.Option(help="Also draw the distributions to this PNG.")] = None,
) -> None:
    """Show the first training batch as the CTC loss sees it, and the split's CTC feasibility and padding."""
    from asr.config import load_config
    from asr.inspection import format_inspection, inspect_data, plot_inspection

    result = inspect_data(data_dir, load_config(config, set_ or []), split)
    typer.echo(format_inspection(result))
    if plot:
        plot_inspection(result, plot)
        typer.echo(f"plot: {plot}")


@app.command()
@user_errors
def align(
    model: Annotated[Path, typer.Argument(help="Model bundle directory.")],
    audio: Annotated[Path, typer.Argument(help="Audio file (any format soundfile reads).")],
    transcript: Annotated[str, typer.Argument(help="What is said in the audio (normalised like training text).")],
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the text report.")]
    = False,
    plot: Annotated[Optional[Path], typer.Option(help="Draw the posteriogram with the alignment to this PNG.")]
    = None,
) -> None:
    """Force-align a known transcript to audio (CTC Viterbi): start/end times of every character and word."""
    from asr.runtime import import_tensorflow

    import_tensorflow()
    from asr.align import align_file, alignment_to_json, format_alignment, plot_alignment
    from asr.bundle import load_bundle

    result = align_file(load_bundle(model), audio, transcript)
    typer.echo(json.dumps(alignment_to_json(result), ensure_ascii=False) if json_ else format_alignment(result))
    if plot:
        plot_alignment(result, plot)
        if not json_:
            typer.echo(f"plot: {plot}")


def main() -> None:  # pragma: no cover - console entry point
    """Entry point for `python -m asr`."""
    app()
