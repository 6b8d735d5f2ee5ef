"""User-facing errors: raised for user mistakes, printed by the CLI as one line (no traceback)."""

from __future__ import annotations


class AsrError(Exception):
    """A problem the user can fix: bad config key, missing file, empty corpus.

    The message names the file or key, the bad value and what would be valid.
    """


def first_line(err: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (frameworks write paragraphs), at most `limit` characters."""
    lines = str(err).strip().splitlines()
    text = lines[0].strip() if lines else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
