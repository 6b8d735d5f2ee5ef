"""espeak-ng voice names, shared by the demo corpus and the synthetic recipe (recipes/synth/local/espeak.py links
here).

    python -c "import espeak; print(espeak.espeak_voice('en-gb-scotland', 'm3'))"
"""

from __future__ import annotations

import functools
import subprocess


@functools.cache
def installed_voices() -> tuple[dict[str, str], frozenset[str]]:
    """espeak-ng's own English voices as {language: voice file}, and the names of its variants."""

    def rows(option: str) -> list[list[str]]:  # columns: Pty Language Age/Gender VoiceName File ...
        listing = subprocess.run(["espeak-ng", option], capture_output=True, text=True, check=True).stdout
        return [line.split() for line in listing.splitlines()[1:] if len(line.split()) >= 5]

    # "mb/" voices need the separate mbrola synthesiser; "gmw/" are espeak-ng's built-in Germanic voices.
    languages = {row[1]: row[4] for row in rows("--voices=en") if row[4].startswith("gmw/")}
    variants = frozenset(row[4].removeprefix("!v/") for row in rows("--voices=variant"))
    return languages, variants


def espeak_voice(language: str, variant: str) -> str:
    """The -v argument for an accent and variant. The voice is named by its file (gmw/en-US+m3), since espeak-ng
    1.51 drops the variant of a voice named by a language that is not its file name: `en-gb+m3` speaks as plain
    `en-gb` (its file is gmw/en), while `gmw/en+m3` takes the variant."""
    name = installed_voices()[0].get(language, language)
    return f"{name}+{variant}" if variant else name
