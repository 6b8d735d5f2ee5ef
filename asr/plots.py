"""Training curves as a PNG: train loss and dev CER per epoch (matplotlib's Agg canvas: no display needed, and
the backend of the process is left alone).

    python -c "from asr.plots import plot_history; from asr.runlog import read_history; \
        plot_history(read_history('exp/demo/log.csv'), 'curves.png')"
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from asr.errors import AsrError
from asr.files import atomic_path


def save_figure(fig: object, path: str | Path, dpi: int = 110) -> None:
    """Write a matplotlib Figure atomically; the format comes from the file suffix (e.g. .png)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi)  # type: ignore[attr-defined]
    except ValueError as err:
        raise AsrError(f"--plot {path}: {err} (use a .png, .svg or .pdf file name)") from None


def plot_history(history: Sequence[dict], path: str | Path) -> None:
    """Write `path` (PNG, atomically): loss per epoch on the left, dev CER (%) on the right."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: the backend of the user's process stays as it is
    from matplotlib.ticker import MaxNLocator

    epochs = [int(h["epoch"]) for h in history]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    FigureCanvasAgg(fig)  # renders headless, whatever the process's backend
    ax_loss, ax_cer = fig.subplots(1, 2)
    ax_loss.plot(epochs, [float(h["loss"]) for h in history], marker=".", label="train")
    ax_loss.set(xlabel="epoch", ylabel="CTC loss per utterance", yscale="log", title="training loss")
    scored = [h for h in history if h.get("dev_cer") not in ("", None)]  # a refit trains on dev: no dev score
    ax_cer.plot([int(h["epoch"]) for h in scored], [100 * float(h["dev_cer"]) for h in scored], marker=".",
                color="tab:orange")
    if scored:
        best = min(scored, key=lambda h: float(h["dev_cer"]))
        ax_cer.axvline(int(best["epoch"]), color="grey", linestyle=":", label=f"best: epoch {best['epoch']}")
        ax_cer.legend()
    ax_cer.set(xlabel="epoch", ylabel="CER (%)", title="dev CER" if scored else "dev CER: none (trained on dev)")
    for ax in (ax_loss, ax_cer):
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    save_figure(fig, path, dpi=100)
