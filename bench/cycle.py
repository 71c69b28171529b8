"""A train -> evaluate cycle (`dlm run`) vs `dlm train` then a separate `dlm eval` (target <= 0.9x).

    python bench/cycle.py                      # tiny-gpt2, SFT 20 steps + 3 tasks at limit 50, 3 alternated rounds
    python bench/cycle.py --model gpt2-124m --steps 2 --rounds 2    # GPT-2-124M-shaped random checkpoint
    python bench/cycle.py --tiny               # the hand-off check only, in-process (a few seconds)

Hand-off check (in-process, always run first): during `study.cycle.run_cycle` the model's weights are read from
disk exactly once (the training load): the evaluator gets the trained model object, not the checkpoint.
Timing (whole processes, alternated): A = `dlm run --mode sft ... --tasks T --limit N`; B = `dlm train ...` then
`dlm eval --model <its output_dir> --tasks T --limit N`. Ratio = median(A) / median(B_train + B_eval).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import benchlib as common

DATASET = "zeroshot/twitter-financial-news-sentiment"
TASKS = "dlm_fpb,dlm_tfns,dlm_fiqa_sa"


def train_flags(model: str, steps: int, out: Path, results: Path) -> list[str]:
    return [
        "--model",
        model,
        "--dataset",
        DATASET,
        "--mode",
        "sft",
        "--max_steps",
        str(steps),
        "--batch_size",
        "4",
        "--gradient_accumulation_steps",
        "1",
        "--max_length",
        "256",
        "--save_steps",
        "1000",
        "--output_dir",
        str(out),
        "--results-dir",
        str(results),
    ]


def eval_flags(limit: int) -> list[str]:
    return ["--tasks", TASKS, "--limit", str(limit), "--eval_batch_size", "8"]


def handoff_check(model: str, steps: int, limit: int, tmp: Path) -> int:
    """How many times run_cycle reads model weights from disk (from_pretrained calls of models or adapters)."""
    from unittest import mock

    import transformers

    from dlm.settings import run_config
    from dlm.study.cycle import run_cycle

    reads = []
    original = transformers.AutoModelForCausalLM.from_pretrained.__func__

    def counting(cls, *args, **kwargs):
        reads.append(args[0] if args else kwargs.get("pretrained_model_name_or_path"))
        return original(cls, *args, **kwargs)

    cycle = run_config(
        {
            "model": model,
            "dataset": DATASET,
            "mode": "sft",
            "max_steps": steps,
            "batch_size": 4,
            "gradient_accumulation_steps": 1,
            "save_steps": 1000,
            "output_dir": str(tmp / "handoff"),
            "results_dir": str(tmp / "handoff-runs"),
            "tasks": TASKS,
            "limit": limit,
        }
    )
    with mock.patch.object(transformers.AutoModelForCausalLM, "from_pretrained", classmethod(counting)):
        record = run_cycle(cycle)
    if not (record.get("eval") or {}).get("scores"):
        raise SystemExit("the cycle wrote no scores")
    print(f"hand-off: weights read from disk {len(reads)} time(s) during the cycle ({reads})")
    return len(reads)


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--model", choices=("tiny-gpt2", "gpt2-124m"), default="tiny-gpt2")
    args = common.parse(p, argv)
    if args.tiny:
        args.steps, args.limit, args.model = 2, 2, "tiny-gpt2"

    from dlm.trainers.tiny import tiny_gpt2_path
    from dlm.trainers.train import _quiet_libraries

    tiny_gpt2_path()
    with tempfile.TemporaryDirectory(prefix="dlm-bench-cycle-") as tmp:
        tmp = Path(tmp)
        model = "tiny-gpt2" if args.model == "tiny-gpt2" else str(common.save_gpt2_124m(tmp / "base"))
        with _quiet_libraries():
            reads = handoff_check("tiny-gpt2", 2, 2, tmp)
        lines = [
            common.result_line(
                "cycle_weight_reads",
                reads,
                1,
                True,
                "times run_cycle read weights from disk (1 = the training load only)",
            )
        ]
        walls = {}
        if not args.tiny:
            dlm = common.dlm_command()
            counter = iter(range(10**6))

            def cycle_side():
                out = tmp / f"run-{next(counter)}"
                cmd = (
                    dlm + ["run"] + train_flags(model, args.steps, out / "ckpt", out / "runs") + eval_flags(args.limit)
                )
                wall = common.run_process(cmd).check("dlm run").wall_s
                shutil.rmtree(out, ignore_errors=True)
                return wall

            def separate_side():
                out = tmp / f"sep-{next(counter)}"
                train = common.run_process(
                    dlm + ["train"] + train_flags(model, args.steps, out / "ckpt", out / "runs")
                ).check("dlm train")
                evaluation = common.run_process(
                    dlm
                    + ["eval", "--model", str(out / "ckpt"), "--results-dir", str(out / "runs")]
                    + eval_flags(args.limit)
                ).check("dlm eval")
                shutil.rmtree(out, ignore_errors=True)
                return train.wall_s + evaluation.wall_s

            runs = common.alternate({"cycle": cycle_side, "separate": separate_side}, args.rounds)
            walls = runs
            for name, values in runs.items():
                print(f"{name:>8}: median {common.median(values):.2f} s (runs {common.spread(values)} s)")
            lines.append(
                common.result_line(
                    f"cycle_time[{args.model}]",
                    common.median(runs["cycle"]) / common.median(runs["separate"]),
                    0.9,
                    True,
                    f"dlm run / (dlm train + dlm eval), {args.steps} SFT steps, 3 tasks at limit {args.limit}",
                )
            )
    payload = {"bench": "cycle", "args": vars(args), "walls": walls, "weight_reads": reads, "results": lines}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
