"""Answer extraction v2 (harness_tasks/extraction.py): every misreading the issue lists, a table of further cases
with the label each must give, and a property test over arbitrary text and choices."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlm.harness_tasks.extraction import EXTRACTION_VERSION, extract_label

LETTERS4 = list("ABCD")
LETTERS10 = list("ABCDEFGHIJ")
SENTIMENT = ["negative", "neutral", "positive"]
YES_NO = ["no", "yes"]
RTE = ["entailment", "not_entailment"]
TOPICS = ["Analyst Update", "Fed | Central Banks", "Company | Product News", "Stock Commentary", "Stock Movement"]
NUMBERS = ["-3", "0", "3", "1000"]

# Every example of the issue's "Why", each read wrongly by version 1.
FROM_THE_ISSUE = [
    ("I think the answer is B", LETTERS10, 1),  # v1: I
    ("A good guess is C", LETTERS4, 2),  # v1: A
    ("A: the answer is C", LETTERS4, 2),  # v1: A
    ("1,000", ["10", "100", "1000"], 2),  # v1: none
    ("−3", ["-3", "3"], 0),  # Unicode minus; v1: none (read 3 as the second choice)
    ("The sentiment is not negative, it is positive.", SENTIMENT, 2),  # v1: negative
]

OWN_CASES = [
    # letters: explicit statements win over the first letter
    ("B is wrong, the answer is D", LETTERS4, 3),
    ("Answer: (C)", LETTERS4, 2),
    ("ANSWER: b", LETTERS4, 1),
    ("The correct answer here is clearly (A).", LETTERS4, 0),
    ("Option B looks plausible but the answer would be C", LETTERS4, 2),
    ("answer is option D", LETTERS4, 3),
    ("The answer is **B**", LETTERS4, 1),
    ("The answer is E", LETTERS4, None),  # a statement naming no option is no answer, not the B after it
    ("The answer is a bit unclear; B maybe", LETTERS4, 1),  # "a bit" is no statement
    ("the answer is a.", LETTERS4, 0),
    ("The answer is J", LETTERS10, 9),
    # letters without a statement: whole upper-case tokens that are options
    ("C", LETTERS4, 2),
    ("(d) is my choice", LETTERS4, 3),
    ("D: Paris", LETTERS4, 3),
    ("A is correct", LETTERS4, 0),
    ("A or B, hard to say", LETTERS4, 0),
    ("I'm fairly sure it is C", LETTERS10, 2),
    ("In the U.S. it would be B", LETTERS4, 1),
    ("GPT-4 says C", LETTERS4, 2),
    ("a b c", LETTERS4, None),  # lower-case bare letters are words
    ("Z", LETTERS4, None),
    ("I would pick F", LETTERS10, 5),  # "I would" is the pronoun
    ("Based on the text, B", LETTERS4, 1),
    # numbers: by value, thousands separators, currency, Unicode minus, hyphens
    ("The total is $1,000.", NUMBERS, 3),
    ("1\u202f000 units", NUMBERS, 3),
    ("It fell to −3 today", NUMBERS, 0),
    ("It fell to \u22123", NUMBERS, 0),
    ("COVID-19 gave 3", NUMBERS, 2),
    ("2-3 weeks", ["2", "3"], 0),
    ("3.0", NUMBERS, 2),
    ("€0", NUMBERS, 1),
    ("After 7 steps the answer is 3", NUMBERS, 2),  # the stated number wins over the first one
    ("The answer is 5, not 3", NUMBERS, None),  # a stated number that is no choice is no answer
    ("1,234,567", ["1234567", "1234"], 0),
    ("Q3 revenue was 1000", NUMBERS, 3),  # "Q3" is no number
    ("seven", NUMBERS, None),
    ("50%", ["25%", "50%"], 1),
    # words: negation, clauses, whole words, multi-word labels
    ("It isn't positive; negative overall", SENTIMENT, 0),
    ("never negative, always neutral", SENTIMENT, 1),
    ("neutral rather than positive", SENTIMENT, 1),
    ("positive instead of negative", SENTIMENT, 2),
    ("neither positive nor negative", SENTIMENT, None),
    ("not at all negative", SENTIMENT, None),
    ("No. Negative.", SENTIMENT, 0),  # the negation ends with its sentence
    ("non-negative outlook, positive", SENTIMENT, 2),
    ("Positively neutral", SENTIMENT, 1),  # "positively" is not "positive"
    ("The answer is negative", SENTIMENT, 0),
    ("Neutral? The answer is positive.", SENTIMENT, 2),  # the statement wins over the first label
    ("not_entailment", RTE, 1),
    ("entailment", RTE, 0),
    ("It is not entailment", RTE, 1),  # reads the label "not entailment", not a negated "entailment"
    ("yes", YES_NO, 1),
    ("No, I don't think so", YES_NO, 0),
    ("Stock movement and stock commentary", TOPICS, 4),
    ("FED / CENTRAL BANKS", TOPICS, 1),
    ("Company | product news", TOPICS, 2),
    ("not stock movement but analyst update", TOPICS, 0),
    ("\n\n  positive\nnegative", SENTIMENT, 2),  # the first non-blank line only
]


@pytest.mark.parametrize("text, choices, expected", FROM_THE_ISSUE + OWN_CASES)
def test_extract_label_reads_the_stated_label(text, choices, expected):
    assert extract_label(text, choices) == expected


def test_the_table_is_as_large_as_promised_and_the_version_moved():
    assert len(OWN_CASES) >= 30 and len(FROM_THE_ISSUE) == 6
    assert EXTRACTION_VERSION == 2


CHOICE_SETS = st.one_of(
    st.lists(st.sampled_from(LETTERS10), min_size=1, max_size=10, unique=True),
    st.lists(st.integers(-(10**7), 10**7).map(str), min_size=1, max_size=6),
    st.lists(st.sampled_from(SENTIMENT + YES_NO + RTE + TOPICS), min_size=1, max_size=6),
    st.lists(st.text(max_size=12), min_size=1, max_size=6),
)


@settings(max_examples=400, deadline=None)
@given(
    text=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from(list("ABCDabcd()-−,.$ 0123456789")),
        max_size=80,
    ),
    choices=CHOICE_SETS,
)
def test_extraction_never_raises_and_returns_an_option_or_none(text, choices):
    found = extract_label(text, choices)
    assert found is None or (isinstance(found, int) and 0 <= found < len(choices))


@settings(max_examples=200, deadline=None)
@given(choices=CHOICE_SETS, pick=st.integers(0, 9))
def test_a_choice_written_alone_is_read_as_itself(choices, pick):
    """Every choice that has a readable form, written alone, reads back as that choice (or an equal one)."""
    choice = choices[pick % len(choices)]
    found = extract_label(choice, choices)
    if found is not None:
        assert choices[found].strip().lower() == choice.strip().lower() or found == choices.index(choice)
