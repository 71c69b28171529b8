"""`dlm eval` vs the `lm_eval` CLI: same 3 tasks, model, limit and batch size, as whole processes (target <= 0.7x).

    python bench/eval_vs_lm_eval.py                        # tiny-gpt2, limit 50, 3 alternated rounds
    python bench/eval_vs_lm_eval.py --model gpt2-124m      # a random-init GPT-2-124M-shaped checkpoint
    python bench/eval_vs_lm_eval.py --tiny                 # limit 2, in-process (checks the script runs)

Tasks: the fin_sentiment members (dlm_fpb, dlm_tfns, dlm_fiqa_sa), data from DLM_DATA_DIR (default samples/).
dlm side:  dlm eval --model M --tasks T --limit N --eval_batch_size 8 --results-dir <tmp>
lm_eval:   lm_eval run --model hf --model_args pretrained=M --tasks T --include_path dlm/harness_tasks --limit N
           --device cpu --batch_size 8
Rounds alternate (dlm, lm_eval, dlm, lm_eval, ...); the ratio is of median wall times. Both score the same
documents with the same model; the scores are compared as a check that they did the same work.
With --tiny, dlm eval runs in this process and the lm_eval command line is only parsed by lm_eval's own CLI
parser (running it costs ~10 s of built-in task indexing): a smoke check, not a timing.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import benchlib as common

TASKS = "dlm_fpb,dlm_tfns,dlm_fiqa_sa"


def dlm_cmd(model: str, limit: int, results: Path) -> list[str]:
    return common.dlm_command() + [
        "eval",
        "--model",
        model,
        "--tasks",
        TASKS,
        "--limit",
        str(limit),
        "--eval_batch_size",
        "8",
        "--results-dir",
        str(results),
    ]


def lm_eval_cmd(model_dir: str, limit: int, output: Path) -> list[str]:
    script = Path(sys.executable).parent / "lm_eval"
    head = [str(script)] if script.exists() else [sys.executable, "-m", "lm_eval"]
    return head + [
        "run",
        "--model",
        "hf",
        "--model_args",
        f"pretrained={model_dir}",
        "--tasks",
        TASKS,
        "--include_path",
        str(common.ROOT / "dlm" / "harness_tasks"),
        "--limit",
        str(limit),
        "--device",
        "cpu",
        "--batch_size",
        "8",
        "--output_path",
        str(output),
    ]


def dlm_scores(results: Path) -> dict:
    from dlm.store.records import load_records

    records, _ = load_records(results)
    scores = records[-1].scores if records else []
    return {(s.task, s.metric): s.value for s in scores if s.metric == "acc"}


def lm_eval_scores(output: Path) -> dict:
    files = sorted(output.rglob("results_*.json"))
    if not files:
        return {}
    results = json.loads(files[-1].read_text(encoding="utf-8"))["results"]
    return {(task, "acc"): values["acc,none"] for task, values in results.items() if "acc,none" in values}


def run_dlm_in_process(cmd: list[str]) -> None:
    """`dlm ...` through cli.main in this process (--tiny)."""
    from dlm import cli

    argv = sys.argv
    sys.argv = ["dlm"] + cmd[(2 if not Path(cmd[0]).name.startswith("dlm") else 1) :]
    try:
        cli.main()
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
    finally:
        sys.argv = argv


def lm_eval_parses(cmd: list[str]) -> None:
    """lm_eval's own parser accepts the command line (--tiny: running it costs ~10 s of task indexing)."""
    from lm_eval._cli import HarnessCLI

    argv = sys.argv
    sys.argv = ["lm_eval"] + cmd[(3 if cmd[1:3] == ["-m", "lm_eval"] else 1) :]
    try:
        HarnessCLI().parse_args()
    finally:
        sys.argv = argv


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--model", choices=("tiny-gpt2", "gpt2-124m"), default="tiny-gpt2")
    args = common.parse(p, argv)
    if args.tiny:
        args.rounds, args.limit, args.model = 1, 2, "tiny-gpt2"

    from dlm.trainers.tiny import tiny_gpt2_path

    with tempfile.TemporaryDirectory(prefix="dlm-bench-eval-") as tmp:
        tmp = Path(tmp)
        model_dir = str(tiny_gpt2_path()) if args.model == "tiny-gpt2" else str(common.save_gpt2_124m(tmp / "m"))
        model_name = "tiny-gpt2" if args.model == "tiny-gpt2" else model_dir
        counter = iter(range(10**6))

        def side(kind: str):
            n = next(counter)
            out = tmp / f"{kind}-{n}"
            cmd = dlm_cmd(model_name, args.limit, out) if kind == "dlm" else lm_eval_cmd(model_dir, args.limit, out)
            if args.tiny:
                run_dlm_in_process(cmd) if kind == "dlm" else lm_eval_parses(cmd)
                wall = float("nan")
            else:
                wall = common.run_process(cmd).check(kind).wall_s
            scores = dlm_scores(out) if kind == "dlm" else lm_eval_scores(out)
            return {"wall_s": wall, "scores": scores}

        runs = common.alternate({"dlm": lambda: side("dlm"), "lm_eval": lambda: side("lm_eval")}, args.rounds)
    ours, theirs = runs["dlm"][-1]["scores"], runs["lm_eval"][-1]["scores"]
    same = bool(ours) and ours.keys() == theirs.keys() and all(abs(ours[k] - theirs[k]) < 1e-9 for k in ours)
    if args.tiny and not ours:
        raise SystemExit("dlm eval wrote no acc scores")
    print(f"acc per task, dlm: {sorted((k[0], round(v, 4)) for k, v in ours.items())}")
    print(f"acc per task, lm_eval: {sorted((k[0], round(v, 4)) for k, v in theirs.items())}")
    print(f"same scores: {same}")
    if not same and not args.tiny:
        print("WARNING: the two sides' scores differ; the timing compares different work", file=sys.stderr)
    walls = {kind: [r["wall_s"] for r in results] for kind, results in runs.items()}
    for kind, values in walls.items():
        print(f"{kind:>8}: median {common.median(values):.2f} s (runs {common.spread(values)} s)")
    line = common.result_line(
        f"eval_process_time[{args.model}]",
        common.median(walls["dlm"]) / common.median(walls["lm_eval"]),
        0.7,
        True,
        f"dlm eval / lm_eval CLI, whole process, 3 tasks, limit {args.limit}",
    )
    payload = {"bench": "eval_vs_lm_eval", "args": vars(args), "walls": walls, "same_scores": same, "result": line}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    os.environ.setdefault("DLM_DATA_DIR", str(common.SAMPLES))
    main()
