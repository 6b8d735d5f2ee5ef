"""The adaptation results table: one row per `asr eval` report (before, after, after + LM) that exists.

    python recipes/adapt/local/results_table.py exp/adapt/me/results.md exp/adapt/me/eval/{before,after,after-lm}.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

NAMES = {"before": "base model", "after": "adapted", "after-lm": "adapted + domain LM"}


def table(reports: list[Path]) -> str:
    """A Markdown table of the reports' model, decoding, utterances, CER and WER."""
    rows = ["| model | decoding | test utterances | CER % | WER % |", "|---|---|---:|---:|---:|"]
    for path in reports:
        r = json.loads(path.read_text(encoding="utf-8"))
        decoding = "greedy" if r["beam_width"] == 1 and not r["lm"] else f"beam {r['beam_width']}" + (
            " + LM" if r["lm"] else "")
        rows.append(f"| {NAMES.get(path.stem, path.stem)} ({r['model']}) | {decoding} | {r['n_utts']} | "
                    f"{100 * r['cer']:.2f} | {100 * r['wer']:.2f} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    out, reports = Path(argv[0]), [Path(p) for p in argv[1:] if Path(p).is_file()]
    text = table(reports)
    out.write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
