"""The audio path and transcript of a manifest's first utterance (of one corpus subset, if given), one a line.

    python recipes/local/first_utterance.py data/librispeech/cpu/test.jsonl test-clean

Prints nothing when the manifest has no such utterance.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    manifest, subset = argv[0], argv[1] if len(argv) > 1 else ""
    with open(manifest, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            if not subset or row.get("subset") == subset:
                print(row["audio"])
                print(row["text"])
                break
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
