"""A realistic constructed study for the report benches: what `dlm plan` over the study's phases writes.

Three base models, each scored zero-shot and trained by every approach (pretrain, sft, sequential pretrain->sft,
multitask) on several datasets and data fractions, each training run under several seeds; every run scored on
its domain's tasks with per-document outcomes (documents shared across runs, as in a real study). Records are
typed schema-2 records written through dlm's own writer, so the report reads exactly what dlm writes.

    from study_gen import write_study
    write_study(Path("runs"), runs=1000)       # about 1,000 records (+ outcomes files)
"""

from __future__ import annotations

import random
from pathlib import Path

MODELS = ("gpt2", "gpt2-medium", "qwen2-0.5b")
MODEL_PARAMS = {"gpt2": 124_439_808, "gpt2-medium": 354_823_168, "qwen2-0.5b": 494_032_768}
DATA = {  # dataset id -> (domain, tasks it is scored on)
    "zeroshot/twitter-financial-news-sentiment": ("finance", ("dlm_tfns", "dlm_fpb", "dlm_fiqa_sa")),
    "takala/financial_phrasebank": ("finance", ("dlm_tfns", "dlm_fpb", "dlm_fiqa_sa")),
    "gbharti/finance-alpaca": ("finance", ("dlm_tfns", "dlm_fpb", "dlm_fiqa_sa")),
    "openai/gsm8k": ("math", ("dlm_gsm8k",)),
    "glue": ("general", ("dlm_glue_sst2", "dlm_glue_rte", "dlm_glue_mrpc")),
}
DOCS = {
    "dlm_tfns": 600,
    "dlm_fpb": 450,
    "dlm_fiqa_sa": 230,
    "dlm_gsm8k": 400,
    "dlm_glue_sst2": 870,
    "dlm_glue_rte": 277,
    "dlm_glue_mrpc": 408,
}
CHOICES = {"dlm_tfns": 3, "dlm_fpb": 3, "dlm_fiqa_sa": 3, "dlm_glue_sst2": 2, "dlm_glue_rte": 2, "dlm_glue_mrpc": 2}
APPROACHES = ("pretrain", "sft", "sequential", "multitask")
FRACTIONS = (0.25, 0.5, 1.0)


def _outcomes(task: str, skill: float, rng: random.Random):
    from dlm.store.outcomes import MetricItems, OutcomeBlock

    n = DOCS[task]
    docs = [f"{task[:4]}{i:08x}" for i in range(n)]  # the same documents for every run
    if task == "dlm_gsm8k":
        correct = [1.0 if rng.random() < skill * 0.3 else 0.0 for _ in range(n)]
        block = OutcomeBlock(
            version="1",
            docs=docs,
            gold=["42"] * n,
            pred=["42"] * n,
            metrics={"exact_match": MetricItems("mean", correct)},
        )
        return block, {"exact_match": sum(correct) / n}
    k = CHOICES[task]
    gold = [(i * 7919) % k for i in range(n)]
    pred = [g if rng.random() < skill else (g + 1 + rng.randrange(k - 1)) % k for g in gold]
    acc = [1.0 if p == g else 0.0 for p, g in zip(pred, gold)]
    pairs = [[g, p] for g, p in zip(gold, pred)]
    block = OutcomeBlock(
        version="1",
        docs=docs,
        gold=gold,
        pred=[[-1.0] * k] * n,
        metrics={"acc": MetricItems("mean", acc), "f1_weighted": MetricItems("f1_weighted", pairs)},
    )
    from dlm.harness_tasks import metrics

    return block, {"acc": sum(acc) / n, "f1_weighted": metrics.f1_weighted([tuple(p) for p in pairs])}


def _record(
    run_id: str,
    approach: str,
    model: str,
    tasks,
    skill: float,
    rng: random.Random,
    directory: Path,
    train: dict | None = None,
    domain: str | None = None,
    starts_from: str | None = None,
    created: int = 0,
) -> dict:
    from dlm.store.outcomes import write_outcomes

    blocks, scores = {}, []
    for task in tasks:
        block, values = _outcomes(task, skill, rng)
        blocks[task] = {"none": block}
        for metric, value in values.items():
            scores.append(
                {
                    "task": task,
                    "metric": metric,
                    "value": value,
                    "stderr": 0.02,
                    "n": DOCS[task],
                    "num_fewshot": 0,
                    "version": "1",
                    "stderr_method": "bootstrap",
                    "protocol": {"scoring": "loglikelihood", "shots": 0, "data_source": "hub"},
                }
            )
    write_outcomes(directory, run_id, blocks)
    record = {
        "run_id": run_id,
        "kind": "cycle",
        "status": "ok",
        "created_at": f"2026-01-01T00:{created // 60:02d}:{created % 60:02d}.{created:06d}",
        "approach": approach,
        "domain": domain,
        "model": {"name": model},
        "eval": {
            "config": {"model": model, "protocol": {"tasks": list(tasks)}},
            "scores": scores,
            "outcomes": f"{run_id}.outcomes.json.gz",
        },
    }
    if train is not None:
        record["train"] = train
    if starts_from is not None:
        record["starts_from"] = {"run_id": starts_from, "approach": "pretrain", "mode": "pretrain"}
    return record


def _train(
    model: str, mode: str, data: list[str], seed: int, fraction: float, steps: int, base: str | None = None
) -> dict:
    flags = {"dataset": data[0]} if len(data) == 1 else {"datasets": data}
    return {
        "mode": mode,
        "config": {"model": model, "mode": mode, "seed": seed, "data_fraction": fraction, "max_steps": steps, **flags},
        "wall_time_s": 3600.0 * fraction,
        "train_time_s": 3500.0 * fraction,
        "total_params": MODEL_PARAMS[base or model],
        "trainable_params": MODEL_PARAMS[base or model],
        "output_dir": f"checkpoints/{mode}-{model}-{seed}-{fraction}-{data[0].split('/')[-1]}",
    }


def write_study(directory: Path, runs: int = 1000, seed: int = 0) -> int:
    """Write about `runs` records into `directory`; returns how many were written."""
    from dlm.store.records import write_record

    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    per_model = max(runs // len(MODELS), 2)
    written = 0
    for m, model in enumerate(MODELS):
        all_tasks = sorted({t for _, tasks in DATA.values() for t in tasks})
        write_record(
            directory,
            _record(f"zs-{model}", "zero-shot", model, all_tasks, 0.4 + 0.05 * m, rng, directory, created=written),
        )
        written += 1
        count, seed_i = 1, 0
        while count < per_model:
            seed_i += 1
            for dataset, (domain, tasks) in DATA.items():
                for fraction in FRACTIONS:
                    for approach in APPROACHES:
                        if count >= per_model:
                            break
                        skill = 0.45 + 0.05 * m + 0.15 * fraction + rng.gauss(0, 0.02)
                        run_id = f"{approach}-{model}-{dataset.split('/')[-1]}-f{fraction}-s{seed_i}"
                        if approach == "sequential":
                            pre_id = f"pre-of-{run_id}"
                            write_record(
                                directory,
                                _record(
                                    pre_id,
                                    "pretrain",
                                    model,
                                    tasks,
                                    skill - 0.05,
                                    rng,
                                    directory,
                                    train=_train(model, "pretrain", [dataset], seed_i, fraction, 500),
                                    domain=domain,
                                    created=written,
                                ),
                            )
                            written += 1
                            record = _record(
                                run_id,
                                "sequential",
                                model,
                                tasks,
                                skill + 0.05,
                                rng,
                                directory,
                                train=_train(
                                    f"checkpoints/{pre_id}", "sft", [dataset], seed_i, fraction, 500, base=model
                                ),
                                domain=domain,
                                starts_from=pre_id,
                                created=written,
                            )
                        elif approach == "multitask":
                            other = "glue" if dataset != "glue" else "openai/gsm8k"
                            record = _record(
                                run_id,
                                "multitask",
                                model,
                                tasks,
                                skill,
                                rng,
                                directory,
                                train=_train(model, "sft", [dataset, other], seed_i, fraction, 1000),
                                domain="mixed",
                                created=written,
                            )
                        else:
                            mode = "pretrain" if approach == "pretrain" else "sft"
                            record = _record(
                                run_id,
                                approach,
                                model,
                                tasks,
                                skill,
                                rng,
                                directory,
                                train=_train(model, mode, [dataset], seed_i, fraction, 1000),
                                domain=domain,
                                created=written,
                            )
                        write_record(directory, record)
                        written += 1
                        count += 1
    return written
