"""The `asr` command line: thin wrappers that validate arguments, build the config, call one function.

    asr --help
    asr prepare recipes/demo/corpus --out data/demo --config configs/demo.yaml
    asr train --config configs/demo.yaml
    asr eval --model exp/demo/bundle --data data/demo --report exp/demo/report.json
    asr transcribe exp/demo/bundle some.wav --json

TensorFlow is imported inside the commands that need it, so `asr --help` is instant. A user mistake
(`AsrError`) prints one line on stderr and exits with status 2; no traceback.
"""

from __future__ import annotations

import collections
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from asr.errors import AsrError


app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Train, score and use character-level CTC speech recognisers.")

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML config (see configs/).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a config key: SECTION.KEY=VALUE.")]


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
) -> None:
    """Read a corpus, normalise and split it, extract MFCC features, write manifests and vocabulary."""
    from asr.config import load_config
    from asr.prepare import prepare as run_prepare

    cfg = load_config(config, set_ or [])
    result = run_prepare(corpus_dir, out, cfg, fmt, jobs, strict, num_shards, shard_index)
    if not result.counts:
        typer.echo(f"shard {shard_index}/{num_shards} done; run once more without --num-shards to finish {out}")
        return
    for split, n in result.counts.items():
        typer.echo(f"{split:>6}: {n} utterances, {result.hours[split]:.2f} h")
    typer.echo(f"shards: {result.total_shards} ({result.reused_shards} reused from an earlier run)")
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
    resume: Annotated[bool, typer.Option(help="Continue from the run directory's last checkpoint.")] = False,
) -> None:
    """Train a BiLSTM-CTC model; the best model by dev CER is written as a bundle."""
    from asr.config import load_config
    from asr.runtime import import_tensorflow

    import_tensorflow()
    overrides = list(set_ or [])
    overrides += [f"train.data_dir={data}"] if data else []
    overrides += [f"train.out_dir={out}"] if out else []
    cfg = load_config(config, overrides)
    from asr.train import train as run_train

    bundle = run_train(cfg, resume, verbose=1 if sys.stderr.isatty() else 2)
    typer.echo(f"best model: {bundle}")


@app.command("eval")
@user_errors
def eval_(
    model: Annotated[Path, typer.Option("--model", "-m", help="Model bundle directory.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Prepared data directory.")],
    split: Annotated[str, typer.Option(help="Split to score: train, dev or test.")] = "test",
    report: Annotated[Optional[Path], typer.Option(help="Write the JSON report here.")] = None,
    beam_width: Annotated[int, typer.Option(help="1 = greedy; > 1 = prefix beam search.")] = 1,
) -> None:
    """Decode a prepared split and report CER/WER."""
    from asr.runtime import import_tensorflow

    import_tensorflow()
    from asr.bundle import load_bundle
    from asr.evaluate import evaluate, format_report
    from asr.files import write_json

    result = evaluate(load_bundle(model), data, split, beam_width)
    typer.echo(format_report(result))
    if report:
        write_json(report, result)
        typer.echo(f"report: {report}")


@app.command()
@user_errors
def transcribe(
    model: Annotated[Path, typer.Argument(help="Model bundle directory.")],
    files: Annotated[list[Path], typer.Argument(help="Audio files (any format soundfile reads).")],
    json_: Annotated[bool, typer.Option("--json", help="One JSON object per line: path, text, duration.")] = False,
    beam_width: Annotated[int, typer.Option(help="1 = greedy; > 1 = prefix beam search.")] = 1,
) -> None:
    """Print a transcript for each audio file; bad files are reported and the rest still transcribed."""
    from asr.runtime import import_tensorflow

    import_tensorflow()
    from asr.transcribe import load_model

    recognizer = load_model(model, beam_width)
    failed = 0
    for path, result in recognizer.transcribe_many([str(f) for f in files]):
        if isinstance(result, AsrError):
            failed += 1
            typer.echo(f"skipped {path}: {result}", err=True)
        elif json_:
            typer.echo(json.dumps({"path": path, "text": result.text, "duration": result.duration}))
        else:
            typer.echo(result.text if len(files) == 1 else f"{path}\t{result.text}")
    if failed:
        raise typer.Exit(1)


def main() -> None:  # pragma: no cover - console entry point
    """Entry point for `python -m asr`."""
    app()
