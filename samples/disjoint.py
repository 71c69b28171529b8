"""Training rows and evaluation rows kept apart by construction, as dlm's own contamination check measures overlap.

Synthetic rows come from small template spaces, so a test row drawn at random often repeats (or nearly repeats)
some training row, of its own dataset or of another one a plan trains on; dlm then rightly warns that the scores
are suspect (`dlm data overlap`). `SPLITS` holds every training text and every evaluation document generated so
far, indexed like harness_tasks/overlap.py indexes them (normalised text fields, word 8-grams per line, short
lines whole). A new evaluation row is drawn again while it is an exact duplicate of a training text or while
`LIMIT` or more of its units occur in training rows; a new training row is drawn again while it would push an
evaluation document that far. LIMIT is below the check's own threshold, a margin for what the check does
differently (it leaves out lines repeated across many documents, which can raise a document's share).

The known real leaks that samples/ reproduces on purpose (repos_finance.py) are written without this index.
"""

from __future__ import annotations

from collections import Counter

from dlm.harness_tasks.overlap import NEAR_THRESHOLD, line_units, text_fields

LIMIT = 0.7 * NEAR_THRESHOLD
TRIES = 500


class Disjoint:
    def __init__(self):
        self.train_units: set[int] = set()
        self.train_fields: set[int] = set()
        self.doc_size: list[int] = []  # units per evaluation document
        self.found: list[int] = []  # units of each evaluation document that occur in training rows
        self.docs_by_unit: dict[int, list[int]] = {}
        self.docs_by_field: dict[int, list[int]] = {}

    @staticmethod
    def _parts(row) -> tuple[set[int], set[int]]:
        fields = text_fields(row)
        units = {unit for f in fields for line in f.lines for unit in line_units(line)}
        return units, {hash(f.text) for f in fields}

    def evaluation(self, make, what: str):
        """An evaluation row from `make()` (or a list of rows, kept or drawn again together: a WikiText article is
        one row per line) that no training row so far contains, wholly or nearly."""
        for _ in range(TRIES):
            made = make()
            rows = made if isinstance(made, list) else [made]
            if all(self._apart(*self._parts(row)) for row in rows):
                for row in rows:
                    self.add_evaluation(row)
                return made
        raise RuntimeError(f"samples: no {what} evaluation row apart from the training rows; widen its templates")

    def _apart(self, units: set[int], fields: set[int]) -> bool:
        return not fields & self.train_fields and not (units and len(units & self.train_units) >= LIMIT * len(units))

    def training(self, make, what: str):
        """A training row from `make()` (or a list of rows, kept or drawn again together) that leaves every
        evaluation document so far below the limit."""
        for _ in range(TRIES):
            made = make()
            rows = made if isinstance(made, list) else [made]
            parts = [self._parts(row) for row in rows]
            units = set().union(*(u for u, _ in parts))
            if any(self.docs_by_field.get(h) for _, fields in parts for h in fields):
                continue
            touched = Counter(doc for unit in units - self.train_units for doc in self.docs_by_unit.get(unit, ()))
            if any(self.found[doc] + n >= LIMIT * self.doc_size[doc] for doc, n in touched.items()):
                continue
            for row in rows:
                self.add_training(row)
            return made
        raise RuntimeError(f"samples: no {what} training row apart from the evaluation rows; widen its templates")

    def add_training(self, row) -> None:
        """Index a training row as it is (a split generated without the index, e.g. Financial PhraseBank's)."""
        units, fields = self._parts(row)
        for unit in units - self.train_units:
            for doc in self.docs_by_unit.get(unit, ()):
                self.found[doc] += 1
        self.train_units |= units
        self.train_fields |= fields

    def add_evaluation(self, row) -> None:
        units, fields = self._parts(row)
        doc = len(self.doc_size)
        self.doc_size.append(len(units))
        self.found.append(len(units & self.train_units))
        for unit in units:
            self.docs_by_unit.setdefault(unit, []).append(doc)
        for h in fields:
            self.docs_by_field.setdefault(h, []).append(doc)


SPLITS = Disjoint()  # one index for every repository of samples/: plans train on one and score another's tasks
