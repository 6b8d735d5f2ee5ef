"""The results table of a corpus recipe: one row per `asr eval` report, with the columns asked for.

    python recipes/local/results_table.py "hours wer cer" exp/librispeech/cpu/results.md exp/librispeech/cpu/eval/*.json

Columns: any of `hours`, `wer`, `cer`. Prints the Markdown table and writes it to the given file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HEADS = {"hours": "hours", "wer": "WER %", "cer": "CER %"}
CELLS = {"hours": lambda r: f"{r['audio_seconds'] / 3600:.2f}", "wer": lambda r: f"{100 * r['wer']:.2f}",
         "cer": lambda r: f"{100 * r['cer']:.2f}"}


def table(columns: list[str], reports: list[Path]) -> str:
    """A Markdown table: test set, utterances and `columns` per report."""
    rows = ["| " + " | ".join(["test set", "utterances"] + [HEADS[c] for c in columns]) + " |",
            "|---|---:|" + "---:|" * len(columns)]
    for path in reports:
        r = json.loads(path.read_text(encoding="utf-8"))
        cells = [r.get("subset") or r["split"], str(r["n_utts"])] + [CELLS[c](r) for c in columns]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n"


def main(argv: list[str]) -> int:
    columns, out, reports = argv[0].split(), Path(argv[1]), [Path(p) for p in argv[2:]]
    unknown = sorted(set(columns) - set(HEADS))
    if unknown:
        sys.exit(f"error: unknown column {unknown[0]!r}; columns: {', '.join(HEADS)}")
    text = table(columns, reports)
    out.write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
