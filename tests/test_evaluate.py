"""`asr eval`: per-utterance errors against hand-worked examples, prepared vs raw corpus, CLI."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil

import pytest
from typer.testing import CliRunner

from asr.cli import app
from asr.errors import AsrError
from asr.evaluate import utterance_rows, worst, write_utterances
from asr.files import read_jsonl
from asr.metrics import score

runner = CliRunner()


def rows_for(rows: list[dict], hyps: list[str]) -> list[dict]:
    """`utterance_rows` as `asr eval` builds them."""
    return utterance_rows(rows, score([r["text"] for r in rows], hyps)[1], hyps)


def test_utterance_rows_hand_worked():
    rows = [{"id": "a", "text": "the cat sat"}, {"id": "b", "text": "on the mat"}, {"id": "c", "text": "hi"}]
    hyps = ["the cat sat down", "on mat", "ho"]
    utts = {u["id"]: u for u in rows_for(rows, hyps)}
    assert (utts["a"]["word_sub"], utts["a"]["word_del"], utts["a"]["word_ins"]) == (0, 0, 1)
    assert (utts["b"]["word_sub"], utts["b"]["word_del"], utts["b"]["word_ins"]) == (0, 1, 0)
    assert (utts["c"]["word_sub"], utts["c"]["char_sub"], utts["c"]["ref_chars"]) == (1, 1, 2)
    assert utts["a"]["wer"] == pytest.approx(1 / 3, abs=1e-4) and utts["c"]["cer"] == 0.5
    import jiwer

    refs = [r["text"] for r in rows]
    for kind, out in (("word", jiwer.process_words(refs, hyps)), ("char", jiwer.process_characters(refs, hyps))):
        # the per-utterance counts add up to jiwer's own corpus-level counts
        for key, total in (("sub", out.substitutions), ("del", out.deletions), ("ins", out.insertions)):
            assert sum(u[f"{kind}_{key}"] for u in utts.values()) == total, (kind, key)
    # one word error each; ties broken by character errors: a (5 inserted), b (4 deleted), c (1 substituted)
    assert [u["id"] for u in worst(list(utts.values()), 2)] == ["a", "b"]


def test_worst_skips_perfect_utterances():
    utts = rows_for([{"id": "a", "text": "yes"}, {"id": "b", "text": "no"}], ["yes", "na"])
    assert [u["id"] for u in worst(utts)] == ["b"]


def test_write_utterances_csv_and_jsonl(tmp_path):
    utts = rows_for([{"id": "a", "text": "x, y"}], ["x y"])
    write_utterances(utts, tmp_path / "u.csv")
    with open(tmp_path / "u.csv", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["ref"] == "x, y" and row["hyp"] == "x y" and row["word_sub"] == "1"
    write_utterances(utts, tmp_path / "u.jsonl")
    assert read_jsonl(tmp_path / "u.jsonl") == utts


@pytest.fixture(scope="module")
def bundle(tiny_bundle):
    from asr.bundle import load_bundle

    return load_bundle(tiny_bundle)


def test_prepared_report(bundle, tiny_prepared):
    from asr.data import PreparedData
    from asr.evaluate import evaluate

    report = evaluate(bundle, tiny_prepared, "test", beam_width=4, n_worst=3)
    rows = PreparedData(tiny_prepared).rows("test")
    assert report["n_utts"] == len(rows) == len(report["utterances"])
    assert report["beam_width"] == 4 and report["decode_x_realtime"] > 0 and len(report["worst"]) <= 3
    word_errors = sum(u["word_sub"] + u["word_del"] + u["word_ins"] for u in report["utterances"])
    assert word_errors == report["words"]["errors"]
    assert report["wer"] == pytest.approx(report["words"]["errors"] / report["words"]["ref_len"])
    json.dumps(report)  # the report is plain JSON


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("pyctcdecode", "kenlm", "arpabo")),
                    reason="LM extra not installed (pip install '.[lm]')")
def test_report_names_the_beam_an_lm_searched(bundle, tiny_prepared, tmp_path):
    """`--lm` with the default width 1 searches LM_BEAM_WIDTH hypotheses; the report says so, not 1."""
    from asr.config import DecodeConfig
    from asr.decoding import LM_BEAM_WIDTH
    from asr.evaluate import evaluate
    from asr.lm import build_lm_from_data

    lm = build_lm_from_data(tiny_prepared, tmp_path / "lm.arpa", 2)
    report = evaluate(bundle, tiny_prepared, "test", decode=DecodeConfig(lm_path=str(lm)))
    assert report["beam_width"] == LM_BEAM_WIDTH and report["lm"] == str(lm)


def test_raw_corpus_scores_like_prepared_data(bundle, tiny_prepared, tiny_corpus, capsys):
    """Featurising the corpus with the bundle's settings gives the same hypotheses as the prepared features;
    on request, both show a progress bar over the utterances."""
    from asr.evaluate import evaluate

    prepared = evaluate(bundle, tiny_prepared, "test", progress=True)
    assert "0/8 [" in capsys.readouterr().err  # a bar over the 8 utterances
    raw = evaluate(bundle, split="test", corpus=tiny_corpus, progress=True)
    assert "0/8 [" in capsys.readouterr().err  # a bar over the 8 utterances
    assert raw["n_utts"] == prepared["n_utts"]
    assert {u["id"]: u["hyp"] for u in raw["utterances"]} == {u["id"]: u["hyp"] for u in prepared["utterances"]}
    assert raw["cer"] == prepared["cer"] and raw["data"] == str(tiny_corpus)


def test_raw_corpus_with_unreadable_audio(bundle, tiny_corpus, tmp_path):
    from asr.evaluate import evaluate

    corpus = shutil.copytree(tiny_corpus / "test", tmp_path / "corpus" / "test")
    victim = sorted(corpus.rglob("*.flac"))[0]
    victim.write_bytes(b"not audio")
    report = evaluate(bundle, split=None, corpus=corpus.parent)
    assert report["n_skipped"] == 1 and victim.stem in report["skipped"][0]["id"]
    assert report["n_utts"] == len(list(corpus.rglob("*.flac"))) - 1


def test_evaluate_needs_exactly_one_source(bundle, tiny_prepared, tiny_corpus):
    from asr.evaluate import evaluate

    with pytest.raises(AsrError, match="either --data"):
        evaluate(bundle)
    with pytest.raises(AsrError, match="no train/dev/test splits"):
        evaluate(bundle, split="test", corpus=tiny_corpus / "test")


def test_cli_eval_on_corpus_writes_utterances_and_report(tiny_bundle, tiny_corpus, tmp_path):
    result = runner.invoke(app, ["eval", "--model", str(tiny_bundle), "--corpus", str(tiny_corpus), "--split",
                                 "dev", "--utts", str(tmp_path / "u.csv"), "--report", str(tmp_path / "r.json"),
                                 "--set", "decode.beam_width=3"])
    assert result.exit_code == 0, result.output
    assert "CER %" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["beam_width"] == 3 and report["split"] == "dev"
    with open(tmp_path / "u.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == report["n_utts"]


def test_cli_eval_user_errors(tiny_bundle, tiny_prepared, tiny_corpus):
    both = runner.invoke(app, ["eval", "-m", str(tiny_bundle), "--data", str(tiny_prepared), "--corpus",
                               str(tiny_corpus)])
    assert both.exit_code == 2 and "not both" in both.output
    bad = runner.invoke(app, ["eval", "-m", str(tiny_bundle), "--data", str(tiny_prepared), "--beam-width", "0"])
    assert bad.exit_code == 2 and "beam_width" in bad.output


def test_warp_search_at_no_warp_scores_what_eval_scores(tiny_bundle, tiny_prepared, capsys):


    import warp_search  # recipes/synth/local/, on pytest's pythonpath

    from asr.bundle import load_bundle
    from asr.evaluate import evaluate

    result = warp_search.warp_search(str(tiny_bundle), str(tiny_prepared), "dev", None, [0.9, 1.0, 1.1])
    report = evaluate(load_bundle(tiny_bundle), tiny_prepared, split="dev")
    assert result["per_alpha"][1.0]["cer"] == pytest.approx(report["cer"])  # warp 1 is the identity
    assert sum(result["chosen"]) == report["n_utts"]
    assert result["per_alpha"][0.9]["chars"] != result["per_alpha"][1.0]["chars"]  # a warp changes the output
    assert warp_search.main(["--model", str(tiny_bundle), "--data", str(tiny_prepared), "--split", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
