"""User-facing errors: raised for user mistakes, printed by the CLI as one line (no traceback)."""

from __future__ import annotations


class AsrError(Exception):
    """A problem the user can fix: bad config key, missing file, empty corpus.

    The message names the file or key, the bad value and what would be valid.
    """
