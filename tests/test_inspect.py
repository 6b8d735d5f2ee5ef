"""`asr inspect` (asr.inspection) on a tiny prepared corpus: the batch training draws, feasibility, padding."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from asr.cli import app
from asr.config import Config
from asr.data import BatchSource, PreparedData
from asr.files import read_jsonl
from asr.inspection import PAD_MARK, SPACE_MARK, inspect_data
from asr.text import PAD_INDEX


def needed_by_hand(text: str) -> int:
    """Frames CTC needs, counted independently: each char, plus one blank wherever a char repeats."""
    return len(text) + sum(1 for k in range(1, len(text)) if text[k] == text[k - 1])


def with_stride(cfg: Config, stride: int) -> Config:
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, conv_stride=stride))


def test_first_batch_is_the_one_training_draws(tiny_prepared: Path, tiny_config: Config) -> None:
    result = inspect_data(tiny_prepared, tiny_config)
    # asr.train builds exactly this source and hands its iteration to Keras
    source = BatchSource(PreparedData(tiny_prepared), "train", tiny_config.train.batch_size,
                         tiny_config.model.conv_stride, tiny_config.train.seed)
    batch = next(source.iterate(range(1)))
    assert np.array_equal(np.array([r.y_true for r in result.rows]), batch["labels"])
    assert [r.out_len for r in result.rows] == batch["out_lens"].tolist()
    assert result.shapes["feats"] == batch["feats"].shape


def test_rows_agree_with_the_manifest(tiny_prepared: Path, tiny_config: Config) -> None:
    result = inspect_data(tiny_prepared, tiny_config)
    manifest = {r["id"]: r for r in read_jsonl(tiny_prepared / "train.jsonl")}
    chars = PreparedData(tiny_prepared).vocab.chars
    l_max = result.shapes["labels"][1]
    assert len(result.rows) == min(tiny_config.train.batch_size, len(manifest))
    for row in result.rows:
        item = manifest[row.id]
        assert row.text == item["text"] and row.label_len == len(item["text"])
        assert "".join(chars[i - 1] for i in row.y_true[: row.label_len]) == item["text"]
        assert row.y_true[row.label_len:] == (PAD_INDEX,) * (l_max - row.label_len)
        assert row.n_frames == item["n_frames"]
        assert row.out_len == math.ceil(item["n_frames"] / tiny_config.model.conv_stride)
        assert row.frames_needed == needed_by_hand(item["text"])
        assert row.feasible  # prepare filtered infeasible items at this stride


def test_summary_counts_infeasible_items_at_a_larger_stride(tiny_prepared: Path, tiny_config: Config) -> None:
    rows = read_jsonl(tiny_prepared / "train.jsonl")
    stride = 8
    expected = [r["id"] for r in rows if needed_by_hand(r["text"]) > math.ceil(r["n_frames"] / stride)]
    assert expected, "the fixture should have items that stride 8 makes infeasible"
    summary = inspect_data(tiny_prepared, with_stride(tiny_config, stride)).summary
    assert [summary.ids[i] for i in summary.infeasible] == expected
    assert len(summary.ratios) == len(rows)
    assert min(summary.ratios) == pytest.approx(min(math.ceil(r["n_frames"] / stride) / len(r["text"]) for r in rows))


def test_padding_waste_of_each_batch(tiny_prepared: Path, tiny_config: Config) -> None:
    result = inspect_data(tiny_prepared, tiny_config)
    source = BatchSource(PreparedData(tiny_prepared), "train", tiny_config.train.batch_size,
                         tiny_config.model.conv_stride, tiny_config.train.seed)
    waste = []
    for idx, batch in zip(source.epoch_batches(0), source.iterate(range(1)), strict=True):  # the padded tensors
        real = sum(source.rows[i]["n_frames"] for i in idx)
        waste.append(1 - real / (batch["feats"].shape[0] * batch["feats"].shape[1]))
    assert list(result.summary.feat_waste) == pytest.approx(waste)
    assert 0 < result.summary.feat_waste_total < result.summary.random_waste_total  # bucketing pays


def test_cli_prints_batch_and_summary(tiny_prepared: Path, tmp_path: Path) -> None:
    from conftest import REPO, TINY_OVERRIDES

    plot = tmp_path / "inspect.png"
    args = ["inspect", str(tiny_prepared), "--config", str(REPO / "configs" / "demo.yaml"), "--plot", str(plot)]
    for override in TINY_OVERRIDES + ["model.conv_stride=8"]:
        args += ["--set", override]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = result.stdout
    rows = read_jsonl(tiny_prepared / "train.jsonl")
    n_bad = sum(needed_by_hand(r["text"]) > math.ceil(r["n_frames"] / 8) for r in rows)
    assert f"CTC-infeasible (fewer output frames than labels + repeats): {n_bad} of {len(rows)}" in out
    assert "model.conv_stride 8" in out and "refuses stride 8" in out  # data was prepared for stride 2
    assert out.count("y_true") >= 8 and PAD_MARK in out
    first = next(line for line in out.splitlines() if line.startswith("[0] "))
    text = first.split('"')[1]
    marks = out.splitlines()[out.splitlines().index(first) + 2].split()  # the characters under the indices
    assert "".join(marks[: len(text)]) == text.replace(" ", SPACE_MARK)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args,message", [
    (["inspect", "no/such/dir"], "not a prepared data directory"),
    (["inspect", "{data}", "--split", "nosuch"], "split 'nosuch' was not prepared"),
    (["inspect", "{data}", "--set", "train.batch_size=0"], "train.batch_size must be >= 1"),
])
def test_cli_user_errors(tiny_prepared: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, [a.format(data=tiny_prepared) for a in args])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert "Traceback" not in result.output


def test_dev_utterances_with_unseen_characters_are_left_out_and_said(tiny_prepared: Path, tiny_config: Config,
                                                                     tmp_path: Path) -> None:
    import json
    import shutil

    from asr.inspection import format_inspection

    data = tmp_path / "data"
    shutil.copytree(tiny_prepared, data)
    rows = read_jsonl(data / "dev.jsonl")
    unseen = next(c for c in "qxjzk" if c not in PreparedData(data).vocab.chars)
    rows[0]["text"] += f" {unseen}"
    (data / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = inspect_data(data, tiny_config, "dev")
    assert result.unencodable == 1 and rows[0]["id"] not in result.summary.ids
    assert "left out: 1 utterances" in format_inspection(result)
