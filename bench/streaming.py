"""Streaming: time to the first optimizer step and peak RSS of `dlm train --mode pretrain`, 10 MB vs 2 GB corpus.

    python bench/streaming.py                  # 10 MB vs 2 GB snapshots, 3 alternated rounds
    python bench/streaming.py --tiny           # 1 MB vs 4 MB, in-process (checks the script runs)
    python bench/streaming.py --batch-rows 0   # as before the readahead bound: record batches of a row group

Both corpora are local snapshots of a streamed pretraining corpus (Skylion007/openwebtext, read from its
`refs/convert/parquet` layout: plain_text/partial-train/NNNN.parquet with a `text` column), generated at run time
in a temporary data dir with the same synthetic documents, row-group size (1,000 rows, ~2 MB) and file size
(`--shard-mb`, default 256; the 10 MB corpus is one file), and deleted afterwards.
Each round runs `dlm train --model tiny-gpt2 --dataset openwebtext --mode pretrain --max_steps 1 --data-dir <dir>`
once per corpus (small, large, small, large, ...) as a whole process. Time to first step = process start until
the progress line of step 1 (printed after the first optimizer step); peak RSS = the process's own maximum
resident set (wait4). A data path that reads only what it needs makes both ratios ~1.
`--batch-rows N` sets the rows per streamed record batch in the dlm processes (dlm.data.loading.STREAM_BATCH_ROWS;
0 = one row group per batch, datasets' default, which lets pyarrow decode a whole file ahead of the reader).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import benchlib as common

HUB_ID = "Skylion007/openwebtext"
SPLIT_DIR = Path(HUB_ID) / "plain_text" / "partial-train"
ROWS_PER_GROUP = 1000  # ~2 MB row groups, like the Hub's parquet export
SHARD_BYTES = 256 * 2**20


def synthetic_documents(n: int, seed: int) -> list[str]:
    """n web-page-like documents of ~2 kB: random words from a fixed vocabulary, in sentences and paragraphs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vocabulary = np.array(
        [
            "the",
            "market",
            "rate",
            "of",
            "and",
            "shares",
            "fell",
            "rose",
            "company",
            "bank",
            "a",
            "to",
            "in",
            "percent",
            "quarter",
            "revenue",
            "growth",
            "said",
            "on",
            "investors",
            "prices",
            "inflation",
            "data",
            "report",
            "year",
            "new",
            "central",
            "policy",
            "stock",
            "bond",
            "yield",
            "profit",
            "loss",
            "for",
            "with",
            "analysts",
            "expected",
            "by",
            "its",
            "earnings",
            "economy",
            "trade",
            "oil",
            "energy",
            "demand",
            "supply",
            "lower",
            "higher",
        ]
    )
    words = vocabulary[rng.integers(0, len(vocabulary), size=(n, 330))]
    documents = []
    for row in words:
        sentences = [" ".join(row[i : i + 11]).capitalize() + "." for i in range(0, len(row), 11)]
        documents.append("\n\n".join(" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)))
    return documents


def write_snapshot(root: Path, total_bytes: int, shard_bytes: int = SHARD_BYTES) -> int:
    """Parquet shards under root/<hub id>/plain_text/partial-train until the files hold `total_bytes`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = root / SPLIT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    written, shard = 0, 0
    block = pa.table({"text": synthetic_documents(ROWS_PER_GROUP, seed=0)})
    while written < total_bytes:
        path = folder / f"{shard:04d}.parquet"
        with pq.ParquetWriter(path, block.schema) as writer:
            size = 0
            while size < min(shard_bytes, total_bytes - written):
                writer.write_table(block, row_group_size=ROWS_PER_GROUP)
                size = path.stat().st_size
        written += path.stat().st_size
        shard += 1
    return written


# `dlm` with dlm.data.loading.STREAM_BATCH_ROWS set from the first argument (0: datasets' default, a row group)
LAUNCH = (
    "import sys, dlm.data.loading as d; d.STREAM_BATCH_ROWS = int(sys.argv.pop(1)) or None; "
    "from dlm import cli; sys.exit(cli.main())"
)


def dlm_command(batch_rows: int | None) -> list[str]:
    if batch_rows is None:
        return common.dlm_command()
    return [common.python(), "-c", LAUNCH, str(batch_rows)]


def train_in_process(data_dir: Path, out: Path, batch_rows: int | None = None) -> dict:
    """--tiny: the same training through trainers.train in this process (checks the data path, times nothing)."""
    import dlm.data.loading
    from dlm.config import TrainConfig
    from dlm.trainers.train import train

    shutil.rmtree(out, ignore_errors=True)
    cfg = TrainConfig(
        model="tiny-gpt2",
        dataset="openwebtext",
        mode="pretrain",
        max_steps=1,
        batch_size=4,
        gradient_accumulation_steps=1,
        max_length=256,
        output_dir=str(out),
        data_dir=str(data_dir),
        results_dir=str(out.parent / "runs"),
    )
    default = dlm.data.loading.STREAM_BATCH_ROWS
    if batch_rows is not None:
        dlm.data.loading.STREAM_BATCH_ROWS = batch_rows or None
    try:
        record = train(cfg).record
    finally:
        dlm.data.loading.STREAM_BATCH_ROWS = default
    if not record["train"]["tokens_seen"]:
        raise SystemExit("no tokens trained on")
    return {"first_step_s": float("nan"), "wall_s": float("nan"), "peak_rss_mb": float("nan")}


def first_step(data_dir: Path, out: Path, batch_rows: int | None = None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    cmd = dlm_command(batch_rows) + [
        "train",
        "--model",
        "tiny-gpt2",
        "--dataset",
        "openwebtext",
        "--mode",
        "pretrain",
        "--max_steps",
        "1",
        "--batch_size",
        "4",
        "--gradient_accumulation_steps",
        "1",
        "--max_length",
        "256",
        "--output_dir",
        str(out),
        "--data-dir",
        str(data_dir),
        "--results-dir",
        str(out.parent / "runs"),
    ]
    result = common.run_process(cmd, marks={"first_step": "step 1/"}).check("dlm train")
    if "first_step" not in result.marks:
        raise SystemExit(f"no progress line for step 1 in the output:\n{result.output[-2000:]}")
    return {"first_step_s": result.marks["first_step"], "wall_s": result.wall_s, "peak_rss_mb": result.peak_rss_mb}


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--small-mb", type=float, default=10)
    p.add_argument("--large-mb", type=float, default=2048)
    p.add_argument(
        "--shard-mb",
        type=float,
        default=SHARD_BYTES / 2**20,
        help="size of each parquet file (the Hub's exports: up to a few hundred MB)",
    )
    p.add_argument(
        "--batch-rows",
        type=int,
        default=None,
        help="rows per streamed record batch (default: dlm's; 0: a row group, datasets' default)",
    )
    args = common.parse(p, argv)
    if args.tiny:
        args.rounds, args.small_mb, args.large_mb = 1, 1, 4

    from dlm.trainers.tiny import tiny_gpt2_path

    tiny_gpt2_path()  # built once here, not inside the first timed process
    with tempfile.TemporaryDirectory(prefix="dlm-bench-stream-") as tmp:
        tmp = Path(tmp)
        sizes = {}
        for name, mb in (("small", args.small_mb), ("large", args.large_mb)):
            sizes[name] = write_snapshot(tmp / name, int(mb * 2**20), int(args.shard_mb * 2**20))
            print(f"{name}: {sizes[name] / 2**20:,.0f} MB of parquet under {tmp / name / SPLIT_DIR}", flush=True)
        measure = train_in_process if args.tiny else first_step
        runs = common.alternate(
            {name: (lambda n=name: measure(tmp / n, tmp / "out" / n, args.batch_rows)) for name in ("small", "large")},
            args.rounds,
        )
    summary = {}
    for name, results in runs.items():
        summary[name] = {key: common.median([r[key] for r in results]) for key in results[0]}
        print(
            f"{name}: first step after {summary[name]['first_step_s']:.2f} s "
            f"({common.spread([r['first_step_s'] for r in results])}), peak RSS "
            f"{summary[name]['peak_rss_mb']:.0f} MB ({common.spread([r['peak_rss_mb'] for r in results])})"
        )
    results = [
        common.result_line(
            "streaming_first_step",
            summary["large"]["first_step_s"] / summary["small"]["first_step_s"],
            1.2,
            True,
            f"{sizes['large'] / 2**20:,.0f} MB / {sizes['small'] / 2**20:,.0f} MB corpus, time to first optimizer step",
        ),
        common.result_line(
            "streaming_peak_rss",
            summary["large"]["peak_rss_mb"] / summary["small"]["peak_rss_mb"],
            1.2,
            True,
            "same corpora, peak RSS",
        ),
    ]
    payload = {"bench": "streaming", "args": vars(args), "bytes": sizes, "runs": runs, "results": results}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
