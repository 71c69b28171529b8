"""Reading a label out of generated text, for the generative twins (`dlm_<task>_gen`).

`extract_label(text, choices)` returns the index of the choice the text names, or None (counted as `missing`, and
wrong). Rules, version EXTRACTION_VERSION (recorded on every twin score; bump it when a rule changes):

- Only the first non-blank line is read: the twins stop at a blank line, and a base model that goes on usually
  starts echoing the prompt ("... either negative, positive or neutral"), which would name every label.
- An explicit answer statement wins over everything else on the line: "answer is X", "Answer: X", "the answer
  would be (X)", or "(X)" later in the same sentence as "answer" ("the correct answer here is (C)"). The first
  such statement counts. A statement that names something that is not an option gives None, not some other
  label of the line.
- Letter choices (MMLU, MMLU-Pro: "A".."J"): without a statement, the first letter that stands as a whole token
  and is an option: "B", "(B)", "B.", "B)". A bare letter counts only in upper case (the article "a", "e.g." and
  "i.e." are not options), never inside a word or an abbreviation ("GPT-4", "U.S.", "I'm"), and "A" / "I" followed
  by a lower-case word are the English words ("A good guess is C" is C, "I think ..." is not option I), except
  before "is", "or", "and" ("A is correct").
- Number choices: numbers are read by value after removing currency signs and thousands separators (",", thin
  spaces) and reading a Unicode minus as "-": "1,000" is the choice 1000, "−3" is -3, "$2.50" is 2.5. A sign
  glued to a word is a hyphen ("COVID-19" is 19, not -19). The first number equal to a choice wins.
- Word choices ("negative", "Fed | Central Banks", "True"): case- and punctuation-insensitive, whole words only
  ("neutrality" is not "neutral"). A label negated within its clause is never read as that label: "not", "no",
  "never", "neither", "nor", "non", "without", "-n't" up to three words before it, or "rather than",
  "instead of", "other than" just before it ("The sentiment is not negative, it is positive." is positive).
- When the line names several labels, the one that appears first wins (the longest at the same place).

harness_tasks/README.md compares these rules with lm-eval's MMLU-Pro filter, FinBen's and FinGPT's.
"""

from __future__ import annotations

import re

EXTRACTION_VERSION = 2

_LETTER = re.compile(r"^[A-Z]$")
_ANSWER = r"(?i:\banswer\b(?:\s+(?:is|was|would\s+be|will\s+be|should\s+be|must\s+be))?)"
# "answer is X", "Answer: X", "answer - (X)", "answer is option X", "answer: **X**"
_STATED_LETTER = re.compile(
    _ANSWER + r"\s*(?:[:=\-]\s*)?(?i:(?:option|choice)\s+)?[\"'*]*(?:\(([A-Za-z])\)|([A-Za-z])(?![A-Za-z0-9'’]))"
)
# "(X)" later in the sentence that says "answer": "the correct answer here is clearly (C)"
_LATER_BRACKET = re.compile(_ANSWER + r"[^.!?\n()]{0,40}?\(([A-Za-z])\)")
_BRACKETED = re.compile(r"\(([A-Za-z])\)")
_BARE = re.compile(r"(?<![A-Za-z0-9'’])(?<![A-Za-z0-9]\.)([A-Z])(?![A-Za-z0-9'’])(?!\.[A-Za-z])(?!-[A-Za-z])")
_WORD_AFTER = re.compile(r"\s+([a-z]+)")
_WORD_LETTERS = {"A", "I", "a", "i"}  # the one-letter English words
_STILL_AN_OPTION = {"is", "or", "and"}  # "A is correct", "A or B"

_MINUSES = str.maketrans({"\u2212": "-", "\ufe63": "-", "\uff0d": "-"})
_CURRENCY = re.compile(r"[$€£¥₹₩₽¢]")
_NUMBER = re.compile(r"([-+]?)((?:\d{1,3}(?:[,\u2009\u202f]\d{3})+|\d+)(?:\.\d+)?)")
_WHOLE_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:[,\u2009\u202f]\d{3})+|\d+)(?:\.\d+)?%?")
_STATED_NUMBER = re.compile(_ANSWER + r"\s*(?:[:=]\s*)?")

_NEGATIONS = {"not", "no", "never", "neither", "nor", "non", "without"}
_NEGATING_PAIRS = {("rather", "than"), ("instead", "of"), ("other", "than")}
_NEGATION_REACH = 3  # words
_STATEMENT_VERBS = {"is", "was", "would", "will", "should", "must", "be"}


def first_line(text: str) -> str:
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()
    return ""


def normalize(text: str) -> str:
    """Lower case, punctuation as spaces, one space between words."""
    return " ".join(re.sub(r"[^\w\s]|_", " ", str(text).lower()).split())


# --- letters -------------------------------------------------------------------------------------------------
def _is_word_not_option(line: str, letter: str, end: int) -> bool:
    """True for "A good guess", "I think": a one-letter English word followed by a lower-case word."""
    if letter not in _WORD_LETTERS:
        return False
    after = _WORD_AFTER.match(line, end)
    return after is not None and after.group(1) not in _STILL_AN_OPTION


def _stated_letter(line: str) -> tuple[int, str] | None:
    """(position, letter) of the first explicit answer statement, the letter as written."""
    found = []
    for match in _STATED_LETTER.finditer(line):
        bracketed, bare = match.group(1), match.group(2)
        if bracketed:
            found.append((match.start(1), bracketed))
        elif not _is_word_not_option(line, bare, match.end(2)):  # "the answer is a bit unclear"
            found.append((match.start(2), bare))
    found += [(m.start(1), m.group(1)) for m in _LATER_BRACKET.finditer(line)]
    return min(found) if found else None


def _letters(line: str, choices: list[str]) -> int | None:
    wanted = {c: i for i, c in enumerate(choices)}
    stated = _stated_letter(line)
    if stated is not None:
        return wanted.get(stated[1].upper())  # an option that does not exist is no answer
    found = [(m.start(1), m.group(1).upper()) for m in _BRACKETED.finditer(line)]
    found += [
        (m.start(1), m.group(1)) for m in _BARE.finditer(line) if not _is_word_not_option(line, m.group(1), m.end(1))
    ]
    found = sorted((position, letter) for position, letter in found if letter in wanted)
    return wanted[found[0][1]] if found else None


# --- numbers -------------------------------------------------------------------------------------------------
def _plain_numbers(text: str) -> str:
    return _CURRENCY.sub("", str(text).translate(_MINUSES))


def _numbers_in(text: str) -> list[tuple[int, float]]:
    """(position, value) of every stand-alone number of `text` (already through _plain_numbers)."""
    out = []
    for match in _NUMBER.finditer(text):
        start = match.start(2)
        if start > 0 and (text[start - 1].isalnum() or text[start - 1] == "." and match.group(1) == ""):
            continue  # "Q3", "v1.2", "COVID19": part of a word
        sign = match.group(1)
        if sign and match.start(1) > 0 and text[match.start(1) - 1].isalnum():
            sign = ""  # "COVID-19", "2-3": a hyphen, not a minus
        digits = re.sub(r"[,\u2009\u202f]", "", match.group(2))
        out.append((match.start(), float(sign + digits)))
    return out


def _as_number(choice: str) -> float | None:
    """The value of a choice that is one number ("1000", "1,000", "$5", "−3", "2.5%"); None otherwise."""
    text = _plain_numbers(str(choice).strip())
    if not _WHOLE_NUMBER.fullmatch(text):
        return None
    return _numbers_in(text)[0][1]


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _numbers(line: str, choices: list[str]) -> int | None:
    values = [_as_number(c) for c in choices]
    text = _plain_numbers(line)
    numbers = _numbers_in(text)
    stated = [m.end() for m in _STATED_NUMBER.finditer(text)]
    if stated:
        after = [(p, v) for p, v in numbers if p >= stated[0]]
        if after and after[0][0] == stated[0]:  # "the answer is 3": that number, or no answer
            numbers = after[:1]
    for _, value in numbers:
        for i, choice in enumerate(values):
            if choice is not None and _same(choice, value):
                return i
    return None


# --- words ---------------------------------------------------------------------------------------------------
def _words_and_clauses(text: str) -> tuple[list[str], list[int]]:
    """Normalized words, and for each the number of the clause (split at , ; . ! ? :) it is in."""
    text = re.sub(r"n['’]t\b", " not", str(text).lower())
    words, clauses = [], []
    for clause, piece in enumerate(re.split(r"[,;.!?:]+", text)):
        for word in normalize(piece).split():
            words.append(word)
            clauses.append(clause)
    return words, clauses


def _negated(words: list[str], clauses: list[int], at: int) -> bool:
    if at >= 2 and (words[at - 2], words[at - 1]) in _NEGATING_PAIRS and clauses[at - 2] == clauses[at]:
        return True
    for j in range(at - 1, max(-1, at - 1 - _NEGATION_REACH), -1):
        if clauses[j] != clauses[at]:
            return False
        if words[j] in _NEGATIONS:
            return True
    return False


def _words(line: str, choices: list[str]) -> int | None:
    words, clauses = _words_and_clauses(line)
    labels = [normalize(c).split() for c in choices]
    starts: dict[int, list[tuple[int, int]]] = {}  # word index -> [(-length, choice index)] of labels found there
    for i, label in enumerate(labels):
        if not label:
            continue
        for at in range(len(words) - len(label) + 1):
            if words[at : at + len(label)] == label and not _negated(words, clauses, at):
                starts.setdefault(at, []).append((-len(label), i))
    if not starts:
        return None
    for at, word in enumerate(words):  # "the answer is positive": a label right after the statement wins
        if word != "answer":
            continue
        after = at + 1
        while after < len(words) and words[after] in _STATEMENT_VERBS:
            after += 1
        if after in starts:
            return min(starts[after])[1]
    return min(starts[min(starts)])[1]


def extract_label(text: str, choices: list[str]) -> int | None:
    """Index into `choices` of the label `text` gives (rules in the module docstring); None when it gives none."""
    line = first_line(text)
    if not line or not choices:
        return None
    choices = [str(c).strip() for c in choices]
    if all(_LETTER.match(c) for c in choices):
        return _letters(line, choices)
    if all(_as_number(c) is not None for c in choices):
        return _numbers(line, choices)
    return _words(line, choices)
