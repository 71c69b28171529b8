"""Reading a label out of generated text, for the generative twins (`dlm_<task>_gen`).

`extract_label(text, choices)` returns the index of the choice the text names, or None (counted as `missing`, and
wrong). Rules, version EXTRACTION_VERSION (recorded on every twin score; bump it when a rule changes):

- Only the first non-blank line is read: the twins stop at a blank line, and a base model that goes on usually
  starts echoing the prompt ("... either negative, positive or neutral"), which would name every label.
- Letter choices (MMLU, MMLU-Pro: "A".."J"): "B", "(B)", "B.", "B)", "Answer: B", "the answer is (b)". A bare
  letter ("B", "B.", "B)") counts only in upper case, so the article "a" or "e.g." is not read as an option; the
  bracketed and "answer" forms count in either case.
- Number choices: any number in the text equal to a choice ("2", "2.0", "+2").
- Word choices ("negative", "Fed | Central Banks", "True"): case- and punctuation-insensitive, whole words only
  ("neutrality" is not "neutral").
- When the text names several labels, the one that appears first in the text wins. FinBen instead takes the first
  label of its choice list found anywhere in the text; the two differ only for outputs naming two labels.
"""

from __future__ import annotations

import re

EXTRACTION_VERSION = 1
_LETTER = re.compile(r"^[A-Z]$")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
# letter forms: "(b)" and "answer: b" / "answer is b" in either case; "B." "B)" and a bare "B" in upper case only
# ("e.g." and "i.e." are not options E and I)
_LETTER_FORMS = (
    re.compile(r"\(([A-Za-z])\)"),
    re.compile(r"\banswer\s*(?:is|:)?\s*:?\s*\(?([A-Za-z])\b", re.IGNORECASE),
    re.compile(r"(?<![A-Za-z])([A-Z])[.)](?![A-Za-z])"),
    re.compile(r"\b([A-Z])\b"),
)


def first_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def normalize(text: str) -> str:
    """Lower case, punctuation as spaces, one space between words."""
    return " ".join(re.sub(r"[^\w\s]|_", " ", str(text).lower()).split())


def _as_number(choice: str) -> float | None:
    try:
        return float(str(choice).strip())
    except ValueError:
        return None


def _letters(text: str, choices: list[str]) -> int | None:
    wanted = {c.upper(): i for i, c in enumerate(choices)}
    found = []  # (position, index)
    for pattern in _LETTER_FORMS:
        for match in pattern.finditer(text):
            letter = match.group(1)
            if letter.upper() in wanted:
                found.append((match.start(1), wanted[letter.upper()]))
    return min(found)[1] if found else None


def _numbers(text: str, choices: list[str]) -> int | None:
    values = [_as_number(c) for c in choices]
    for match in _NUMBER.finditer(text):
        value = float(match.group())
        for i, choice in enumerate(values):
            if choice == value:
                return i
    return None


def _words(text: str, choices: list[str]) -> int | None:
    padded = f" {normalize(text)} "
    best = None  # (position, -length, index): earliest, then longest ("Markets" vs "Stock Movement" never tie)
    for i, choice in enumerate(choices):
        label = normalize(choice)
        if not label:
            continue
        position = padded.find(f" {label} ")
        if position >= 0 and (best is None or (position, -len(label)) < best[:2]):
            best = (position, -len(label), i)
    return best[2] if best else None


def extract_label(text: str, choices: list[str]) -> int | None:
    """Index into `choices` of the label `text` gives (rules in the module docstring); None when it gives none."""
    line = first_line(text)
    if not line or not choices:
        return None
    choices = [str(c) for c in choices]
    if all(_LETTER.match(c.strip()) for c in choices):
        return _letters(line, [c.strip() for c in choices])
    if all(_as_number(c) is not None for c in choices):
        return _numbers(line, choices)
    return _words(line, choices)
