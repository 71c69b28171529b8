"""Training-time estimates vs measured time: three tiny-gpt2 SFT runs of different lengths on this machine.

For each run: the estimate printed before training (FLOPs over this CPU's timed matmul), the one calibrated on the
first 5 steps, and the measured training time; the ratio estimate / measured (1.0 = exact).

    python bench/time_estimate.py [--tiny] [--json bench/time_estimate.json]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import benchlib as common

TWEETS = "zeroshot/twitter-financial-news-sentiment"


def main(argv=None) -> dict:
    args = common.parse(common.parser(__doc__), argv)
    from dlm.config import TrainConfig
    from dlm.trainers.train import train

    work = Path(tempfile.mkdtemp(prefix="dlm-bench-estimate-"))
    lengths = [6] if args.tiny else [20, 60, 150]
    rows = []
    for steps in lengths:
        cfg = TrainConfig(
            model="tiny-gpt2",
            dataset=TWEETS,
            mode="sft",
            max_steps=steps,
            batch_size=8,
            max_length=128,
            save_steps=10_000,
            output_dir=str(work / f"run-{steps}"),
            results_dir=str(work / "runs"),
        )
        estimate = train(cfg).record["train"]["time_estimate"]
        actual = estimate["actual_train_s"]
        rows.append(
            {
                "steps": steps,
                **estimate,
                "before_ratio": estimate["predicted_s"] / actual,
                "calibrated_ratio": estimate.get("calibrated_s", float("nan")) / actual,
            }
        )
        print(
            f"{steps} steps: before {estimate['predicted_s']:.1f} s, calibrated {estimate.get('calibrated_s', 0):.1f} s, "
            f"measured {actual:.1f} s"
        )
    worst = max(max(r["calibrated_ratio"], 1 / r["calibrated_ratio"]) for r in rows)
    results = [
        common.result_line(
            "calibrated_estimate_worst_factor",
            worst,
            2.0,
            True,
            f"{len(rows)} tiny runs of {', '.join(str(r['steps']) for r in rows)} steps",
        )
    ]
    payload = {"bench": "time_estimate", "results": results, "runs": rows}
    common.write_json(args.json_out, payload)
    return payload


if __name__ == "__main__":
    main()
