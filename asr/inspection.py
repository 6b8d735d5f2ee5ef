"""`asr inspect`: show one training batch exactly as the CTC loss sees it, and the corpus-wide CTC numbers.

    asr inspect data/demo --config configs/demo.yaml
    asr inspect data/demo --config configs/demo.yaml --set model.conv_stride=6 --plot inspect.png

The batch is the first one training would draw: `BatchSource(PreparedData(DATA_DIR), split, train.batch_size,
model.conv_stride, train.seed)`, epoch 0, taken by iterating the source like `asr train` does. For each
utterance it shows `y_true` (the `labels` row), `label_length`, feature frames, `input_length` (output frames
after subsampling) and whether CTC can emit the transcript in that many frames
(`asr.text.ctc_frames_needed`: one frame per label plus a blank between repeated letters). Then, over the
whole split: the output-frames-per-label ratios, the infeasible items, and the padding each batch carries.

Named `inspection` rather than `inspect`: a module named like the stdlib's `inspect` breaks any Python started
inside `asr/` (dataclasses and typing import `inspect`). No TensorFlow is imported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.batch import output_lengths
from asr.config import Config
from asr.data import BatchSource, PreparedData
from asr.errors import AsrError
from asr.text import PAD_INDEX, Vocabulary, ctc_frames_needed

SPACE_MARK = "\u2423"  # how a space label is printed under its index
PAD_MARK = "\u00b7"  # how a padding entry (PAD_INDEX) is printed
LABELS_PER_LINE = 30  # wrap long y_true rows
RATIO_BINS = (0.0, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, math.inf)  # text histogram of frames per label
RANDOM_ORDER_SEED = 12345  # the unbucketed comparison draws batches in this fixed random order


@dataclass(frozen=True)
class BatchRow:
    """One utterance of the inspected batch: its row of each tensor the CTC loss receives."""

    id: str
    text: str
    y_true: tuple[int, ...]  # the `labels` row, [L_max]: char indices >= 1, then PAD_INDEX padding
    label_len: int  # `label_lens[b]` (Keras: label_length)
    n_frames: int  # feature frames before padding
    out_len: int  # `out_lens[b]` (Keras: input_length): output frames after subsampling
    frames_needed: int  # fewest output frames CTC needs for this transcript

    @property
    def feasible(self) -> bool:
        """True when the model emits enough frames to spell the transcript."""
        return self.frames_needed <= self.out_len


@dataclass(frozen=True)
class SplitSummary:
    """CTC numbers over every utterance of a split, and the padding of its training batches."""

    ids: tuple[str, ...]
    texts: tuple[str, ...]
    out_lens: tuple[int, ...]  # output frames per utterance (same order as `ids`)
    needed: tuple[int, ...]  # frames CTC needs per utterance
    ratios: tuple[float, ...]  # output frames per label
    feat_waste: tuple[float, ...]  # per batch, in training order: padded share of the feats tensor
    label_waste: tuple[float, ...]  # per batch: padded share of the labels tensor
    feat_waste_total: float  # padded share of all feats tensors of an epoch under the bucketing
    random_waste_total: float  # the same share if batches were cut from a random order (no bucketing)

    @property
    def slack(self) -> list[int]:
        """Spare output frames per utterance, out_len - frames needed (< 0: infeasible)."""
        return [o - n for o, n in zip(self.out_lens, self.needed, strict=True)]

    @property
    def infeasible(self) -> list[int]:
        """Positions (into `ids`) of the CTC-infeasible utterances."""
        return [i for i, s in enumerate(self.slack) if s < 0]


@dataclass(frozen=True)
class Inspection:
    """What `asr inspect` reports: the first training batch and the split summary."""

    data_dir: str
    split: str
    batch_size: int  # train.batch_size
    stride: int  # model.conv_stride
    seed: int  # train.seed
    prepared_stride: int  # the conv_stride `asr prepare` checked feasibility for
    vocab: Vocabulary
    shapes: dict[str, tuple[int, ...]]  # tensor name -> shape of the first batch
    rows: tuple[BatchRow, ...]  # the first batch, in batch order
    summary: SplitSummary
    unencodable: int = 0  # dev/test utterances left out: characters no training text has (no labels for them)


def first_batch(source: BatchSource) -> tuple[list[int], dict]:
    """Row indices and tensors of the first batch of epoch 0, drawn as `asr train` draws it (`source.iterate`)."""
    batch = next(source.iterate(range(1)))
    idx = source.epoch_batches(0)[0]  # `iterate` walks the epoch's batches in order: its first batch is these rows
    assert list(batch["label_lens"]) == [len(source.labels[i]) for i in idx], "batch order out of sync"
    return idx, batch


def batch_rows(source: BatchSource, idx: list[int], batch: dict) -> list[BatchRow]:
    """One BatchRow per utterance of `batch` (rows `idx` of `source`)."""
    out = []
    for b, i in enumerate(idx):
        row = source.rows[i]
        out.append(BatchRow(row["id"], row["text"], tuple(int(v) for v in batch["labels"][b]),
                            int(batch["label_lens"][b]), int(row["n_frames"]), int(batch["out_lens"][b]),
                            ctc_frames_needed(source.labels[i])))
    return out


def padding_waste(lengths: list[int]) -> tuple[int, int]:
    """(padded, total) entries of one padded batch of sequences with these lengths."""
    total = len(lengths) * max(lengths)
    return total - sum(lengths), total


def _waste_share(batches: list[list[int]], lengths: list[int]) -> tuple[list[float], float]:
    """Per-batch padded share, and the share over all batches together."""
    counts = [padding_waste([lengths[i] for i in idx]) for idx in batches]
    per_batch = [pad / total if total else 0.0 for pad, total in counts]
    padded, total = sum(c[0] for c in counts), sum(c[1] for c in counts)
    return per_batch, padded / total if total else 0.0


def summarise_split(source: BatchSource) -> SplitSummary:
    """Frames-per-label ratios, feasibility slack and padding waste over the whole split of `source`."""
    n_frames = [int(r["n_frames"]) for r in source.rows]
    out_lens = output_lengths(n_frames, source.stride).tolist()
    ratios = tuple(o / max(1, len(y)) for o, y in zip(out_lens, source.labels, strict=True))
    batches = source.epoch_batches(0)
    feat_waste, feat_total = _waste_share(batches, n_frames)
    label_waste, _ = _waste_share(batches, [max(1, len(y)) for y in source.labels])
    order = np.random.default_rng(RANDOM_ORDER_SEED).permutation(len(n_frames)).tolist()
    random_batches = [order[k:k + source.batch_size] for k in range(0, len(order), source.batch_size)]
    _, random_total = _waste_share(random_batches, n_frames)
    return SplitSummary(tuple(r["id"] for r in source.rows), tuple(r["text"] for r in source.rows),
                        tuple(out_lens), tuple(ctc_frames_needed(y) for y in source.labels), ratios,
                        tuple(feat_waste), tuple(label_waste), feat_total, random_total)


def inspect_data(data_dir: str | Path, cfg: Config, split: str = "train") -> Inspection:
    """Draw the first batch of `split` exactly as training with `cfg` would, and summarise the split."""
    if cfg.train.batch_size < 1:
        raise AsrError(f"train.batch_size must be >= 1, got {cfg.train.batch_size}")
    data = PreparedData(data_dir)
    source = BatchSource(data, split, cfg.train.batch_size, cfg.model.conv_stride, cfg.train.seed)
    idx, batch = first_batch(source)
    shapes = {name: tuple(int(d) for d in batch[name].shape) for name in ("feats", "labels", "label_lens", "out_lens")}
    rows = tuple(batch_rows(source, idx, batch))
    return Inspection(str(data_dir), split, cfg.train.batch_size, cfg.model.conv_stride, cfg.train.seed,
                      data.prepared_stride, data.vocab, shapes, rows, summarise_split(source), source.unencodable)


# ---------------------------------------------------------------------------------------------------- text report


def label_symbol(index: int, vocab: Vocabulary) -> str:
    """Printable symbol under a y_true entry: the character, SPACE_MARK for space, PAD_MARK for padding."""
    if index == PAD_INDEX:
        return PAD_MARK
    char = vocab.symbol(index)
    return SPACE_MARK if char == " " else char


def format_y_true(y_true: tuple[int, ...], vocab: Vocabulary, indent: str = "    ") -> list[str]:
    """Lines showing a labels row: indices, and the characters under them; wrapped every LABELS_PER_LINE."""
    width = 1 + max(len(str(v)) for v in (*y_true, vocab.size - 1))
    lines = []
    for k in range(0, len(y_true), LABELS_PER_LINE):
        chunk = y_true[k:k + LABELS_PER_LINE]
        lines.append(indent + "y_true " + "".join(f"{v:>{width}}" for v in chunk))
        lines.append(indent + "       " + "".join(f"{label_symbol(v, vocab):>{width}}" for v in chunk))
    return lines


def format_row(b: int, row: BatchRow, vocab: Vocabulary, stride: int) -> list[str]:
    """The block printed for one utterance of the batch."""
    verdict = "feasible" if row.feasible else f"INFEASIBLE: {row.frames_needed - row.out_len} frames short"
    repeats = row.frames_needed - row.label_len
    return [f"[{b}] {row.id}  \"{row.text}\"", *format_y_true(row.y_true, vocab),
            f"    label_length {row.label_len}   feature frames {row.n_frames} -> input_length {row.out_len} "
            f"= ceil({row.n_frames} / {stride})   ({row.out_len / max(1, row.label_len):.2f} frames per label)",
            f"    CTC needs {row.frames_needed} frames ({row.label_len} labels + {repeats} blanks between repeated "
            f"letters): {verdict}"]


def format_tensors(result: Inspection) -> list[str]:
    """The shapes of the batch's four tensors, with their Keras-example names."""
    s = result.shapes
    shape = {name: str(list(dims)) for name, dims in s.items()}
    width = max(len(v) for v in shape.values())
    return ["tensors of this batch (the inputs of the Lambda CTC layer):",
            f"  feats       float32 {shape['feats']:<{width}}  MFCC frames, right-padded with the train mean",
            f"  labels      int32   {shape['labels']:<{width}}  y_true: char indices >= 1, padded with {PAD_INDEX}; "
            "never the blank (class 0)",
            f"  label_lens  int32   {shape['label_lens']:<{width}}  label_length: true transcript lengths",
            f"  out_lens    int32   {shape['out_lens']:<{width}}  input_length: output frames after subsampling, "
            f"ceil(frames / {result.stride})"]


def format_ratios(summary: SplitSummary) -> list[str]:
    """Quantiles and a text histogram of output frames per label."""
    r = np.asarray(summary.ratios)
    q = np.quantile(r, [0.0, 0.05, 0.5, 0.95, 1.0])
    lines = ["output frames per label: " + "  ".join(f"{n} {v:.2f}" for n, v in zip(
        ("min", "p5", "median", "p95", "max"), q, strict=True))]
    counts, _ = np.histogram(r, bins=np.asarray(RATIO_BINS))
    width = max(1, int(counts.max()))
    for lo, hi, n in zip(RATIO_BINS[:-1], RATIO_BINS[1:], counts, strict=True):
        bar = "#" * int(round(40 * n / width))
        lines.append(f"  [{lo:>4.1f}, {hi:>4.1f})  {n:>6}  {bar}".rstrip())
    return lines


def format_summary(result: Inspection) -> list[str]:
    """The split-wide part of the report."""
    s = result.summary
    bad = s.infeasible
    lines = [f"split {result.split}: {len(s.ids)} utterances, {len(s.feat_waste)} batches of up to "
             f"{result.batch_size}", *format_ratios(s),
             f"CTC-infeasible (fewer output frames than labels + repeats): {len(bad)} of {len(s.ids)}"]
    if result.unencodable:
        lines.insert(1, f"  left out: {result.unencodable} utterances with characters no training transcript has "
                        "(scored by `asr eval`, but they have no labels)")
    for i in bad[:10]:
        lines.append(f"  {s.ids[i]} \"{s.texts[i]}\": needs {s.needed[i]} frames, the model emits {s.out_lens[i]}")
    if len(bad) > 10:
        lines.append(f"  ... and {len(bad) - 10} more")
    if result.stride > result.prepared_stride:
        lines.append(f"  note: {result.data_dir} was prepared for model.conv_stride {result.prepared_stride}; "
                     f"`asr train` refuses stride {result.stride} until `asr prepare` is re-run with it "
                     "(prepare drops infeasible items)")
    slack = s.slack
    tight = sorted(range(len(s.ids)), key=lambda i: slack[i])[:3]
    lines.append("tightest: " + ", ".join(f"{s.ids[i]} ({slack[i]:+d} frames spare)" for i in tight))
    fw = np.asarray(s.feat_waste)
    lines += [f"padding of feats per batch (length-bucketed, epoch 0): mean {fw.mean():.1%}, max {fw.max():.1%}, "
              f"whole epoch {s.feat_waste_total:.1%} (unbucketed random batches: {s.random_waste_total:.1%})",
              f"padding of labels per batch: mean {np.mean(s.label_waste):.1%}, max {np.max(s.label_waste):.1%}"]
    return lines


def format_inspection(result: Inspection) -> str:
    """The full text report of `asr inspect`."""
    lines = [f"{result.data_dir}, split {result.split}: first batch as `asr train` draws it "
             f"(train.batch_size {result.batch_size}, train.seed {result.seed}, model.conv_stride {result.stride})",
             "", *format_tensors(result), "",
             f"{SPACE_MARK} = space, {PAD_MARK} = padding ({PAD_INDEX}): the loss reads only the first label_length "
             "entries", ""]
    for b, row in enumerate(result.rows):
        lines += [*format_row(b, row, result.vocab, result.stride), ""]
    return "\n".join(lines + format_summary(result))


# ---------------------------------------------------------------------------------------------------- plot


def plot_inspection(result: Inspection, path: str | Path) -> None:
    """PNG with three panels: frames-per-label histogram, padding per batch, the first batch's lengths."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    from asr.plots import save_figure

    s = result.summary
    fig = Figure(figsize=(11, 8), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(3, 1)
    ax1.hist(s.ratios, bins=40, color="tab:blue")
    ax1.axvline(1.0, color="tab:red", linestyle="--", label="1 frame per label (below: always infeasible)")
    ax1.set(title=f"{result.split}: output frames per label (conv_stride {result.stride}); "
            f"{len(s.infeasible)} infeasible", xlabel="output frames / label", ylabel="utterances")
    ax1.legend()
    ax2.bar(range(len(s.feat_waste)), np.asarray(s.feat_waste) * 100, color="tab:orange")
    ax2.axhline(s.random_waste_total * 100, color="tab:gray", linestyle="--", label="unbucketed random batches")
    ax2.set(title="padding share of each batch's feats (training order, epoch 0)", xlabel="batch", ylabel="% padded")
    ax2.xaxis.get_major_locator().set_params(integer=True)
    ax2.legend()
    ys = np.arange(len(result.rows))
    t_max = result.shapes["feats"][1]
    ax3.barh(ys, [r.n_frames for r in result.rows], color="tab:green", label="feature frames")
    ax3.barh(ys, [t_max - r.n_frames for r in result.rows], left=[r.n_frames for r in result.rows],
             color="lightgray", label="padding")
    ax3.set_yticks(ys, [r.id for r in result.rows], fontsize=7)
    ax3.invert_yaxis()  # batch row 0 on top, as in the text report
    ax3.set(title="first batch: feature frames and padding", xlabel="input frames")
    ax3.legend(loc="lower left")
    save_figure(fig, path)
