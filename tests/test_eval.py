"""The lm-eval task plugins and `dlm eval`, on the tiny GPT-2 and samples/ (offline).

One module-scoped run scores every task (3 documents each, 1 shot) so that the per-task checks share it:
metrics present, few-shot contexts never holding their own document, F1 equal to scikit-learn's on the same
predictions. Built-in parity runs lm-eval's own glue sst2 / gsm8k / mmlu YAMLs on the same local files.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlm.errors import UserError
from dlm.harness_tasks.catalog import DOMAIN_GROUPS, PREFIX, TASKS_DIR, catalog, leaf_tasks, list_tasks, resolve_tasks
from dlm.settings import eval_config

# every task: the suite, its generative twins, the gated one, the code one
ALL = ["dlm_all", "dlm_all_gen", "dlm_financemath", "dlm_bigcodebench"]


def _close(a, b, tol=1e-9):
    return math.isclose(float(a), float(b), rel_tol=tol, abs_tol=tol)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture(scope="module")
def full_run(tiny, samples_dir):
    """({task name: Task}, lm-eval results with samples) for every task, limit 3, 1 shot, no bootstrap.

    Generation is capped at 16 new tokens: decoding dominates the run time, and the scorers only need some text.
    """
    from dlm.harness_tasks.evaluate import check_fewshot, run_harness, task_manager_for

    manager = task_manager_for(ALL, samples_dir)
    loaded = manager.load(ALL)
    check_fewshot(loaded["tasks"], 1)
    for task in loaded["tasks"].values():
        if task.get_config("output_type") == "generate_until":
            task.set_config("generation_kwargs", {"max_gen_toks": 16}, update=True)
    cfg = eval_config(
        dict(
            model="tiny-gpt2",
            tasks=ALL,
            num_fewshot=1,
            limit=3,
            eval_batch_size=32,
            bootstrap_iters=0,
            allow_code_execution=True,
        )
    )
    top = [loaded["groups"].get(name) or loaded["tasks"][name] for name in ALL]
    return loaded["tasks"], run_harness(*tiny, top, manager, cfg, log_samples=True)


# --- the catalog and the index ----------------------------------------------------------------------------------
def test_every_yaml_file_is_registered_by_lm_eval():
    """A YAML that lm-eval cannot parse is skipped silently; here it makes the counts differ."""
    from lm_eval.tasks import TaskManager

    files = sorted(p for p in TASKS_DIR.rglob("*.yaml") if "__pycache__" not in p.parts)
    manager = TaskManager(include_path=str(TASKS_DIR), include_defaults=False)
    assert len(manager.all_tasks) == len(files) == len(catalog())
    assert set(manager.all_tasks) == set(catalog())
    assert not manager.all_tags  # tags would register extra names with no aggregate


def test_names_are_prefixed_versioned_and_listed():
    for name, info in catalog().items():
        assert name.startswith(PREFIX) or name in ("fin_sentiment", "fin_sentiment_gen"), name
        assert info.version, f"{name} has no metadata.version"
        if info.kind == "group":
            assert info.metrics, f"group {name} has no aggregate_metric_list"
            assert all(member in catalog() for member in info.members), name
    rows = {row["name"]: row for row in list_tasks()}
    assert set(rows) == set(catalog())
    assert rows["dlm_fpb"]["dataset"] == "takala/financial_phrasebank:sentences_50agree"
    assert rows["dlm_fpb"]["shots"].startswith("0")  # zero-shot by default
    assert rows["fin_sentiment"]["is_group"] and rows["fin_sentiment"]["dataset"] == "3 tasks"
    assert set(DOMAIN_GROUPS.values()) <= set(rows)
    assert len(leaf_tasks("dlm_mmlu")) == 57 and len(leaf_tasks("dlm_glue")) == 8


def test_resolve_tasks_suggests_and_refuses_overlaps():
    assert resolve_tasks(["finance", "dlm_gsm8k"]) == ["dlm_finance", "dlm_gsm8k"]
    with pytest.raises(UserError, match="did you mean 'fin_sentiment'"):
        resolve_tasks(["fin_sentimnet"])
    with pytest.raises(UserError, match="both contain 'dlm_fpb'"):
        resolve_tasks(["dlm_finance", "fin_sentiment"])


def test_loader_holdout_and_pool_are_disjoint_and_stable():
    import datasets

    from dlm.harness_tasks.loader import drop_scored_texts, in_holdout, split_holdout

    texts = [f"Company {i} reported results" for i in range(400)] + ["Company 7 reported  RESULTS"]  # a duplicate
    parts = split_holdout(datasets.Dataset.from_dict({"sentence": texts}), key="sentence", fraction=0.2)
    train, test = set(parts["train"]["sentence"]), set(parts["test"]["sentence"])
    assert not train & test and len(train) + len(test) == 401
    assert 0.12 < len(test) / 401 < 0.28
    assert in_holdout(texts[7], 0.2) == in_holdout(texts[-1], 0.2)  # case and spacing do not move a row
    # dlm_data/data.py excludes the same rows from training: the rule must not drift silently
    assert [in_holdout(f"sentence {i}", 0.2) for i in range(8)] == [False, True, False, True, False, False, True, False]
    pool = datasets.Dataset.from_dict({"q": ["a", "B", "c"], "x": [1, 2, 3]})
    scored = datasets.Dataset.from_dict({"q": ["b "], "x": [9]})
    assert drop_scored_texts(pool, [scored], ["q"])["q"] == ["a", "c"]


# --- every task runs --------------------------------------------------------------------------------------------
def test_every_task_yields_its_metrics(full_run):
    tasks, results = full_run
    leaves = [leaf for name in ALL for leaf in leaf_tasks(name)]
    assert sorted(tasks) == sorted(leaves) and len(leaves) == sum(i.kind == "task" for i in catalog().values())
    for name in leaves:
        row = results["results"][name]
        expected = [m["metric"] for m in catalog()[name].config["metric_list"] if m["metric"] != "sem_sim"]
        for metric in expected:
            values = [v for k, v in row.items() if k.split(",")[0] == metric]
            assert values and all(math.isfinite(float(v)) for v in values), (name, metric, row)
        if catalog()[name].twin:
            assert 0 <= row["missing,none"] <= 1, name
        assert results["n-shot"][name] == 1
        assert results["n-samples"][name]["effective"] == 3
        assert "sem_sim,none" not in row  # opt-in only
    for group in (
        "fin_sentiment",
        "dlm_adaptllm",
        "dlm_finance",
        "dlm_glue",
        "dlm_mmlu",
        "dlm_math",
        "dlm_all",
        "fin_sentiment_gen",
        "dlm_adaptllm_gen",
        "dlm_finance_gen",
        "dlm_glue_gen",
        "dlm_mmlu_gen",
        "dlm_math_gen",
        "dlm_general_gen",
        "dlm_all_gen",
    ):
        aggregates = {k.split(",")[0] for k in results["groups"][group] if "," in k and "_stderr" not in k}
        assert set(catalog()[group].metrics) <= aggregates, (group, aggregates)
    assert results["results"]["dlm_gsm8k"].keys() >= {"exact_match,strict-match", "exact_match,flexible-extract"}


def test_no_fewshot_context_contains_its_own_document(full_run):
    tasks, results = full_run
    for name, samples in results["samples"].items():
        task = tasks[name]
        same_split = task.get_config("fewshot_split") == task.get_config("test_split")
        pool_split = task.get_config("fewshot_split")
        assert pool_split, f"{name}: no explicit fewshot_split"
        if not same_split:  # shots come from another split; with hub data that is a different set of rows
            eval_split = task.get_config("test_split") or task.get_config("validation_split")
            assert pool_split != eval_split, name
        for sample in samples:
            context = sample["arguments"][0][0]
            query = task.doc_to_text(sample["doc"])
            assert context.endswith(query), name
            assert context.count(query) == 1, f"{name}: scored document repeated in its own few-shot context"
            assert len(context) > len(query) + len(task.config.description or ""), f"{name}: no shot in context"


def test_classification_f1_equals_sklearn_on_the_same_predictions(full_run):
    from sklearn.metrics import f1_score, matthews_corrcoef

    _, results = full_run
    for name in ("dlm_tfns", "dlm_fin_topics", "dlm_glue_mnli", "dlm_adapt_headline"):
        pairs = [sample["f1_macro"] for sample in results["samples"][name]]
        golds, preds = [g for g, _ in pairs], [p for _, p in pairs]
        row = results["results"][name]
        assert _close(row["f1_macro,none"], f1_score(golds, preds, average="macro", zero_division=0))
        assert _close(row["f1_weighted,none"], f1_score(golds, preds, average="weighted", zero_division=0))
        assert _close(row["mcc,none"], matthews_corrcoef(golds, preds))
        assert _close(row["acc,none"], sum(g == p for g, p in pairs) / len(pairs))


def test_f1_aggregations_match_sklearn_on_a_constructed_case():
    from sklearn.metrics import f1_score, precision_score, recall_score

    from dlm.harness_tasks import metrics

    golds = [0, 0, 0, 1, 1, 2, 2, 2, 2, 1]
    preds = [0, 1, 0, 1, 2, 2, 2, 0, 2, 1]
    items = list(zip(golds, preds))
    assert _close(metrics.f1_macro(items), f1_score(golds, preds, average="macro"))
    assert _close(metrics.f1_weighted(items), f1_score(golds, preds, average="weighted"))
    assert _close(metrics.precision_macro(items), precision_score(golds, preds, average="macro"))
    assert _close(metrics.recall_macro(items), recall_score(golds, preds, average="macro"))
    f1_c0 = 2 * (2 / 3) * (2 / 3) / (4 / 3)  # precision 2/3, recall 2/3
    f1_c1 = 2 * (2 / 3) * (2 / 3) / (4 / 3)  # precision 2/3 (3 predicted, 2 right), recall 2/3
    f1_c2 = 2 * 0.75 * 0.75 / 1.5  # precision 3/4, recall 3/4
    assert _close(metrics.f1_macro(items), (f1_c0 + f1_c1 + f1_c2) / 3)
    assert _close(metrics.f1_weighted(items), (3 * f1_c0 + 3 * f1_c1 + 4 * f1_c2) / 10)
    # Headline: mean over class_id of the weighted F1 inside each class_id
    grouped = [(0, 1, 1), (0, 0, 1), (1, 0, 0), (1, 1, 1)]
    expected = (f1_score([1, 0], [1, 1], average="weighted", zero_division=0) + 1.0) / 2
    assert _close(metrics.grouped_f1_weighted(grouped), expected)


# --- scorers on hand-written answers ----------------------------------------------------------------------------
def _gsm8k_scores(response: str, answer: str) -> dict:
    """Apply dlm_gsm8k's own filter_list and exact_match settings (read from its YAML) to one response."""
    import lm_eval.filters  # noqa: F401  (registers the filters by name)
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.api.registry import get_filter

    config = catalog()["dlm_gsm8k"].config
    kwargs = {
        k: v for k, v in config["metric_list"][0].items() if k not in ("metric", "aggregation", "higher_is_better")
    }
    out = {}
    for pipeline in config["filter_list"]:
        resps = [[response]]
        for step in pipeline["filter"]:
            step = dict(step)
            resps = list(get_filter(step.pop("function"))(**step).apply(resps, [{}]))
        value = resps[0] if isinstance(resps[0], str) else resps[0][0]
        out[pipeline["name"]] = exact_match_hf_evaluate(predictions=[value], references=[answer], **kwargs)[
            "exact_match"
        ]
    return out


def test_gsm8k_strict_and_flexible_extraction():
    gold = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72"
    assert _gsm8k_scores(" 48 + 24 = 72 clips.\n#### 72", gold) == {"strict-match": 1.0, "flexible-extract": 1.0}
    assert _gsm8k_scores(" She sold 72 clips in total.", gold) == {"strict-match": 0.0, "flexible-extract": 1.0}
    assert _gsm8k_scores(" The answer is $1,072.", "so #### 1,072") == {"strict-match": 0.0, "flexible-extract": 1.0}
    assert _gsm8k_scores(" #### 70\nThen 2 more.", gold) == {"strict-match": 0.0, "flexible-extract": 0.0}


def test_adaptllm_and_math_scorers_on_hand_written_answers():
    from dlm.harness_tasks import metrics
    from dlm.harness_tasks.math.utils import math_answers_equal

    gold = "Apple (organization), Cupertino (location)"
    assert metrics.entity_f1(gold, gold) == 1.0
    # one of two gold entities right in text and type; the other prediction is wrong -> p = r = 1/2
    assert _close(metrics.entity_f1(gold, "Apple (organization), Paris (person)"), 0.5)
    assert metrics.entity_f1(gold, "no entities here") == 0.0
    # a match needs text and type: same types with other names, or the right names with swapped types, score 0
    assert metrics.entity_f1(gold, "Microsoft (organization), Paris (location)") == 0.0
    assert metrics.entity_f1(gold, "Apple (location), Cupertino (organization)") == 0.0
    assert metrics.convfinqa_match("0.12", "the change was 12%") == 1.0  # percent means /100
    assert metrics.convfinqa_match("1,234.5", "it is 7 and 1234.504") == 1.0  # AdaptLLM: any number on line 1
    assert metrics.convfinqa_match("3.5", "about 3.6\n3.5") == 0.0  # only the first line counts
    assert math_answers_equal(" 0.50.", "0.5") and math_answers_equal("-3", "-3.0")
    assert not math_answers_equal("x**2", "x**3")


def test_sem_sim_is_opt_in(tiny_model_dir, monkeypatch, capsys):
    from dlm.harness_tasks import text_answers as metrics

    monkeypatch.delenv(metrics.SEM_SIM_ENV, raising=False)
    assert "sem_sim" not in metrics.text_scores("revenue rose 5%", "revenue rose 5%")
    monkeypatch.setenv(metrics.SEM_SIM_ENV, str(tiny_model_dir))  # any local encoder works; no download
    same = metrics.text_scores("revenue rose 5%", "revenue rose 5%")
    assert _close(same["sem_sim"], 1.0, tol=1e-5) and same["exact_match"] == 1.0 and same["rougeL"] == 1.0
    monkeypatch.setenv(metrics.SEM_SIM_ENV, str(tiny_model_dir / "missing"))
    assert "sem_sim" not in metrics.text_scores("a", "b")
    assert "sem_sim skipped" in capsys.readouterr().err


# --- parity with lm-eval's built-in tasks -----------------------------------------------------------------------
def _builtin(name: str, yaml_path: str, data_files: dict) -> dict:
    """lm-eval's own task YAML, renamed and pointed at local parquet files instead of the Hub."""
    import lm_eval
    from lm_eval.tasks._yaml_loader import load_yaml

    config = load_yaml(Path(lm_eval.__file__).parent / "tasks" / yaml_path)
    config.update(
        task=name,
        dataset_path="parquet",
        dataset_name=None,
        dataset_kwargs={"data_files": {split: str(path) for split, path in data_files.items()}},
    )
    config.pop("tag", None)
    return config


def test_mirrored_tasks_score_like_the_builtins(tiny, samples_dir):
    from dlm.harness_tasks.evaluate import run_harness, task_manager_for

    def one(pattern):
        return next(samples_dir.glob(pattern))

    references = {
        "dlm_glue_sst2": _builtin(
            "ref_sst2",
            "glue/sst2/default.yaml",
            {"train": one("nyu-mll/glue/sst2/train-*"), "validation": one("nyu-mll/glue/sst2/validation-*")},
        ),
        "dlm_gsm8k": _builtin(
            "ref_gsm8k",
            "gsm8k/gsm8k.yaml",
            {"train": one("openai/gsm8k/main/train-*"), "test": one("openai/gsm8k/main/test-*")},
        ),
        "dlm_mmlu_abstract_algebra": _builtin(
            "ref_mmlu",
            "mmlu/default/mmlu_abstract_algebra.yaml",
            {"dev": one("cais/mmlu/abstract_algebra/dev-*"), "test": one("cais/mmlu/abstract_algebra/test-*")},
        ),
    }
    references["dlm_gsm8k"]["generation_kwargs"]["max_gen_toks"] = 32  # a short decoding budget keeps it fast
    ours = list(references)
    manager = task_manager_for(ours, samples_dir)
    loaded = manager.load(ours + list(references.values()))
    loaded["tasks"]["dlm_gsm8k"].set_config("generation_kwargs", {"max_gen_toks": 32}, update=True)
    # zero-shot: our few-shot pools also drop rows equal to a scored row (the samples repeat sst2 sentences
    # across splits), which the built-ins do not, so k-shot contexts may legitimately differ
    cfg = eval_config(
        dict(model="tiny-gpt2", tasks=ours, num_fewshot=0, limit=5, eval_batch_size=16, bootstrap_iters=0)
    )
    results = run_harness(*tiny, list(loaded["tasks"].values()), manager, cfg, log_samples=True)
    for name, ref in references.items():
        ref_name = ref["task"]
        ours_prompts = [s["arguments"] for s in results["samples"][name]]
        ref_prompts = [s["arguments"] for s in results["samples"][ref_name]]
        assert ours_prompts == ref_prompts, f"{name}: prompts differ from lm-eval's {ref_name}"
        for key, value in results["results"][ref_name].items():
            if "," in key and "_stderr" not in key:
                assert _close(results["results"][name][key], value), (name, key)


# --- the two entry points ---------------------------------------------------------------------------------------
def test_lm_eval_cli_runs_fin_sentiment_directly_with_the_same_scores(tmp_path, tiny, tiny_model_dir, samples_dir):
    """`lm_eval --tasks fin_sentiment --include_path dlm/harness_tasks` as a user types it, from another directory, with
    DLM_DATA_DIR pointing at the snapshots; its numbers equal dlm's in-process evaluation."""
    from dlm.harness_tasks.evaluate import evaluate

    lm_eval_bin = Path(sys.executable).with_name("lm_eval")
    cmd = [
        str(lm_eval_bin),
        "--model",
        "hf",
        "--model_args",
        f"pretrained={tiny_model_dir},dtype=float32",
        "--tasks",
        "fin_sentiment",
        "--include_path",
        str(TASKS_DIR),
        "--device",
        "cpu",
        "--batch_size",
        "8",
        "--limit",
        "4",
        "--output_path",
        str(tmp_path / "out"),
    ]
    env = {**os.environ, "DLM_DATA_DIR": str(samples_dir)}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    cli = json.loads(next((tmp_path / "out").rglob("results_*.json")).read_text())["results"]

    cfg = eval_config(
        dict(model="tiny-gpt2", tasks=["fin_sentiment"], limit=4, bootstrap_iters=0, data_dir=str(samples_dir))
    )
    ours = evaluate(cfg, model=tiny[0], tokenizer=tiny[1], write=False)["eval"]["raw"]["results"]
    for task in ("dlm_fpb", "dlm_tfns", "dlm_fiqa_sa", "fin_sentiment"):
        for metric in ("acc,none", "f1_weighted,none"):
            assert _close(cli[task][metric], ours[task][metric]), (task, metric)


def test_dlm_eval_writes_a_record(results_dir, tiny_model_dir, samples_dir, capsys):
    from dlm import cli

    cli.main(
        [
            "eval",
            "--model",
            str(tiny_model_dir),
            "--tasks",
            "dlm_tfns,dlm_glue_rte",
            "--limit",
            "3",
            "--data-dir",
            str(samples_dir),
            "--results-dir",
            str(results_dir),
        ]
    )
    (path,) = results_dir.glob("*.json")
    record = json.loads(path.read_text())
    assert record["kind"] == "eval" and record["model"]["resolved"] == str(tiny_model_dir)
    scores = {(s["task"], s["metric"]): s for s in record["eval"]["scores"]}
    assert {("dlm_tfns", "f1_weighted"), ("dlm_glue_rte", "mcc")} <= set(scores)
    assert scores[("dlm_tfns", "acc")]["n"] == 3 and scores[("dlm_tfns", "acc")]["num_fewshot"] == 0
    assert "samples" not in record["eval"]["raw"] and record["eval"]["raw"]["versions"]["dlm_tfns"] == 1.0
    assert record["eval"]["config"]["protocol"]["eval_batch_size"] == 8 and record["eval"]["wall_time_s"] > 0
    assert "dlm_tfns" in capsys.readouterr().out


def test_batch_size_is_applied_and_a_training_model_stays_in_training(tiny, samples_dir):
    from dlm.harness_tasks.evaluate import evaluate

    model, tokenizer = tiny
    seen = []
    hook = model.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.append(
            (kwargs.get("input_ids") if kwargs.get("input_ids") is not None else args[0]).shape[0]
        ),
        with_kwargs=True,
    )
    model.train()
    try:
        cfg = eval_config(
            dict(
                model="tiny-gpt2",
                tasks=["dlm_imdb"],
                limit=6,
                eval_batch_size=4,
                bootstrap_iters=0,
                data_dir=str(samples_dir),
            )
        )
        record = evaluate(cfg, model=model, tokenizer=tokenizer, extra={"approach": "sft"}, write=False)
    finally:
        hook.remove()
    assert max(seen) == 4  # 12 requests in batches of 4 (lm-eval's own default would be 1)
    assert model.training and record["approach"] == "sft"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--tasks", "fin_sentimnet"], "did you mean 'fin_sentiment'"),
        (["--tasks", "dlm_mmlu_pro_math", "--num_fewshot", "99"], "--num_fewshot 99 is more than"),
        (["--tasks", "dlm_bigcodebench"], "--allow-code-execution"),
        (["--tasks", "dlm_financemath"], "is gated"),
        (["--tasks", "dlm_tfns", "--peft", "no-such-adapter"], "adapter 'no-such-adapter' not found"),
    ],
    ids=["unknown-task", "k-over-pool", "code-without-opt-in", "gated-without-token", "missing-adapter"],
)
def test_bad_input_is_one_line_exit_2_and_no_record(args, message, tiny_model_dir, results_dir, capsys, monkeypatch):
    from dlm import cli

    if "dlm_financemath" in args:  # no local snapshot: the Hub path, offline and without a token
        monkeypatch.delenv("DLM_DATA_DIR")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval", "--model", str(tiny_model_dir), *args, "--results-dir", str(results_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2
    assert err[-1].startswith("error: ") and message in err[-1]
    assert not any(line.startswith("Traceback") for line in err)
    assert not results_dir.exists() or not list(results_dir.iterdir())


def test_missing_checkpoint_is_a_user_error(results_dir):
    from dlm.harness_tasks.evaluate import evaluate

    with pytest.raises(UserError, match="not found"):
        evaluate(
            eval_config(dict(model="./checkpoints/never-trained", tasks=["dlm_tfns"], results_dir=str(results_dir)))
        )
    assert not results_dir.exists()
