"""The per-document outcomes file beside a run record: `<results_dir>/<run_id>.outcomes.json.gz`.

    {"schema": 1, "run_id": ..., "tasks": {task: {filter: {"version", "docs", "gold", "pred",
                                                           "metrics": {metric: {"aggregation", "values"}}}}}}

`Outcomes` is the typed form and `read_outcomes` its one strict loader: a file that is not gzip, holds more than
MAX_BYTES once decompressed (a decompression bomb), is not this schema, or whose lists disagree in length (a value
per document, in every block) is refused, naming the file and the field. What the blocks mean and the bootstraps
they allow: harness_tasks/outcomes.py. The `aggregation` a file names is only informative: readers look it up by
task and metric, never by the name in the file.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dlm.files import atomic_write
from dlm.secrets import scrub
from dlm.store.records import record_file, write_record
from dlm.store.rescue import rescued
from dlm.store.schema import Json, SchemaError, check, load

SUFFIX = ".outcomes.json.gz"
OUTCOMES_SCHEMA = 1
MAX_BYTES = 1 << 30  # decompressed; MMLU's 14k documents take ~3 MB


@dataclass
class MetricItems:
    aggregation: str | None = None  # informative only (see the module docstring)
    values: list[Json] = field(default_factory=list)  # the per-document items lm-eval aggregates


@dataclass
class OutcomeBlock:
    """One task and filter: per document its hash, gold answer, prediction and each metric's item."""

    version: str | None = None
    docs: list[str] = field(default_factory=list)
    gold: list[Json] = field(default_factory=list)
    pred: list[Json] = field(default_factory=list)
    metrics: dict[str, MetricItems] = field(default_factory=dict)

    def check(self, where: str) -> OutcomeBlock:
        for name, items in (("gold", self.gold), ("pred", self.pred)):
            if len(items) != len(self.docs):
                raise SchemaError(f"{where}.{name}", f"{len(items)} values for {len(self.docs)} documents")
        for metric, slot in self.metrics.items():
            if len(slot.values) != len(self.docs):
                raise SchemaError(
                    f"{where}.metrics.{metric}.values", f"{len(slot.values)} values for {len(self.docs)} documents"
                )
        return self


@dataclass
class Outcomes:
    schema: int = field(default=OUTCOMES_SCHEMA, metadata=check(minimum=OUTCOMES_SCHEMA))
    run_id: str | None = None
    tasks: dict[str, dict[str, OutcomeBlock]] = field(default_factory=dict)

    def block(self, task: str, filter_: str) -> OutcomeBlock | None:
        return (self.tasks.get(task) or {}).get(filter_)


def outcomes_path(results_dir: str | Path, run_id: str) -> Path:
    return Path(results_dir) / f"{run_id}{SUFFIX}"


def outcomes_bytes(run_id: str, tasks: dict[str, dict[str, OutcomeBlock]]) -> bytes:
    # predictions are model output (an API model's too): scrubbed like records before they are stored
    payload = json.dumps(scrub(asdict(Outcomes(run_id=run_id, tasks=tasks))), separators=(",", ":"))
    return gzip.compress(payload.encode("utf-8"), 6)


def write_outcomes_file(path: str | Path, run_id: str, tasks: dict[str, dict[str, OutcomeBlock]]) -> Path:
    return atomic_write(path, outcomes_bytes(run_id, tasks))


def write_outcomes(results_dir: str | Path, run_id: str, tasks: dict[str, dict[str, OutcomeBlock]]) -> Path:
    return write_outcomes_file(outcomes_path(results_dir, run_id), run_id, tasks)


def write_results(results_dir: str | Path, record: dict, tasks: dict[str, dict[str, OutcomeBlock]] | None) -> Path:
    """An evaluation's record and its outcomes file (named in record.eval.outcomes). The outcomes go first, so a
    record never names a file that is not there; when either write fails (disk full), both are rescued, the record
    first (store/rescue.py), and the error says where they are."""
    run_id = record["run_id"]
    if tasks:
        path = outcomes_path(results_dir, run_id)
        record["eval"]["outcomes"] = path.name
        data = outcomes_bytes(run_id, tasks)
        try:
            atomic_write(path, data)
        except OSError as err:
            raise rescued([record_file(record), (path.name, data)], results_dir, err, "the outcomes") from None
    return write_record(results_dir, record)


def load_outcomes(data, where: str = "") -> Outcomes:
    """The one strict loader of an outcomes file's content (a parsed JSON value)."""
    outcomes = load(Outcomes, data, where)
    if outcomes.schema > OUTCOMES_SCHEMA:
        raise SchemaError(f"{where}.schema", f"{outcomes.schema} was written by a newer dlm; upgrade dlm to read it")
    for task, filters in outcomes.tasks.items():
        for name, block in filters.items():
            block.check(f"{where}.tasks.{task}.{name}")
    return outcomes


def read_outcomes(path: str | Path) -> Outcomes:
    """An outcomes file; SchemaError when it cannot be read as one (OSError when it cannot be opened)."""
    path = Path(path)
    raw = path.read_bytes()
    try:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip, read in bounded steps
        text = inflater.decompress(raw, MAX_BYTES)
        if inflater.unconsumed_tail:
            raise SchemaError(path.name, f"more than {MAX_BYTES >> 20} MB once decompressed")
        data = json.loads(text)
    except (zlib.error, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise SchemaError(path.name, f"not a gzip JSON file ({err.__class__.__name__})") from None
    return load_outcomes(data, path.name)
