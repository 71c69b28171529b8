"""Cycles, main.py, plans and the demo: what a run is called, what it is scored on, what is reused or resumed.

Runs are real (tiny-gpt2, samples/, lm-eval on the dlm_* tasks) but kept to a few steps and `limit 3` scoring.
"""

from __future__ import annotations

import io
import re
import shlex
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from pathlib import Path

import pytest

import main as seed_main
from dlm import cli, settings
from dlm import demo as demo_module
from dlm.config import MixtureSpec, TrainConfig
from dlm.errors import UserError
from dlm.plan import run as plan_run
from dlm.plan import runner as plan_runner
from dlm.plan.file import load_plan
from dlm.settings import run_config
from dlm.store.records import RunRecord, TrainPart, load_records
from dlm.study import cycle as study_cycle
from dlm.study import zero_shot

ROOT = Path(__file__).resolve().parent.parent
TFNS = "zeroshot/twitter-financial-news-sentiment"
FPB = "takala/financial_phrasebank"
FAST_EVAL = ["--limit", "3", "--bootstrap_iters", "0", "--eval_batch_size", "16"]
FAST_TRAIN = ["--batch_size", "2", "--gradient_accumulation_steps", "1", "--max_length", "64"]

# Command lines of the study plan, verbatim (the plan's [DATASET] placeholder filled in).
STUDY_COMMANDS = {
    "baseline": "python main.py --model gpt2 --dataset takala/financial_phrasebank --mode sft --max_steps 0 "
    "--evaluation_only",
    "pretrain": "python main.py --model gpt2 --dataset gbharti/finance-alpaca --mode pretrain --max_steps 2000",
    "wikitext": "python main.py --model gpt2 --dataset wikitext --dataset_config wikitext-103-raw-v1 --mode pretrain "
    "--max_steps 2000",
    "fin-mix": "python main.py --model gpt2 --datasets gbharti/finance-alpaca LLukas22/fiqa --dataset_configs None "
    "None --mixture_rates 0.7 0.3 --mode pretrain --max_steps 2000",
    "math-mix": "python main.py --model gpt2 --datasets openai/gsm8k open-web-math/open-web-math --dataset_configs "
    "main None --mixture_rates 0.4 0.6 --mode pretrain --max_steps 2000",
    "gsm8k-sft": "python main.py --model gpt2 --dataset openai/gsm8k --dataset_config main --mode sft --max_steps 800",
    "fin-multitask": "python main.py --model gpt2 --datasets zeroshot/twitter-financial-news-sentiment "
    "takala/financial_phrasebank --dataset_configs None None --mixture_rates 0.5 0.5 --mode sft "
    "--max_steps 1200",
    "glue-multitask": "python main.py --model gpt2 --datasets glue glue glue --dataset_configs sst2 cola mrpc "
    "--mixture_rates 0.4 0.3 0.3 --mode sft --max_steps 1200",
    "seq-pretrain": "python main.py --model gpt2 --dataset gbharti/finance-alpaca --mode pretrain --max_steps 1000 "
    "--output_dir ./checkpoints/gpt2_finance_pretrain",
    "seq-sft": "python main.py --model ./checkpoints/gpt2_finance_pretrain --dataset "
    "zeroshot/twitter-financial-news-sentiment --mode sft --max_steps 500",
    "fin-mix3-no-steps": "python main.py --model gpt2 --datasets zeroshot/twitter-financial-news-sentiment "
    "takala/financial_phrasebank FinGPT/fingpt-sentiment-train --dataset_configs None None None "
    "--mixture_rates 0.4 0.3 0.3 --mode sft",
    "efficiency": "python main.py --model gpt2 --dataset stanfordnlp/imdb --mode sft --batch_size 4 "
    "--gradient_accumulation_steps 4 --max_length 256 --max_steps 1000 --save_steps 200 "
    "--save_total_limit 3",
}


def study_argv(name: str, steps: int | None = None) -> list[str]:
    """A study command as main.py's argv, on tiny-gpt2 and (optionally) with fewer steps."""
    line = STUDY_COMMANDS[name].replace("--model gpt2 ", "--model tiny-gpt2 ")
    if steps is not None:
        line = re.sub(r"--max_steps \d+", f"--max_steps {steps}", line)
    return shlex.split(line)[2:]


def records(results_dir) -> list[dict]:
    return [r.to_dict() for r in load_records(results_dir)[0]]  # as stored


# --- main.py: the study's command lines --------------------------------------------------------------------
EXPECTED = {  # name -> (mode or None when evaluation only, [(dataset, config)], rates)
    "baseline": (None, [(FPB, None)], [1.0]),
    "pretrain": ("pretrain", [("gbharti/finance-alpaca", None)], [1.0]),
    "wikitext": ("pretrain", [("wikitext", "wikitext-103-raw-v1")], [1.0]),
    "fin-mix": ("pretrain", [("gbharti/finance-alpaca", None), ("LLukas22/fiqa", None)], [0.7, 0.3]),
    "math-mix": ("pretrain", [("openai/gsm8k", "main"), ("open-web-math/open-web-math", None)], [0.4, 0.6]),
    "gsm8k-sft": ("sft", [("openai/gsm8k", "main")], [1.0]),
    "fin-multitask": ("sft", [(TFNS, None), (FPB, None)], [0.5, 0.5]),
    "glue-multitask": ("sft", [("glue", "sst2"), ("glue", "cola"), ("glue", "mrpc")], [0.4, 0.3, 0.3]),
    "seq-pretrain": ("pretrain", [("gbharti/finance-alpaca", None)], [1.0]),
    "seq-sft": ("sft", [(TFNS, None)], [1.0]),
    "fin-mix3-no-steps": ("sft", [(TFNS, None), (FPB, None), ("FinGPT/fingpt-sentiment-train", None)], [0.4, 0.3, 0.3]),
    "efficiency": ("sft", [("stanfordnlp/imdb", None)], [1.0]),
}


@pytest.mark.parametrize("name", list(STUDY_COMMANDS))
def test_study_plan_command_lines_parse_onto_the_same_cycle_as_dlm_run(name):
    argv = shlex.split(STUDY_COMMANDS[name])[2:]
    cycle = parse(argv)
    mode, parts, rates = EXPECTED[name]
    assert cycle.model == argv[argv.index("--model") + 1]
    assert [(p.dataset, p.config) for p in cycle.data.parts] == parts
    assert cycle.data.rates == pytest.approx(rates)
    if mode is None:
        assert cycle.train is None  # --max_steps 0 / --evaluation_only: evaluate as is
        return
    assert isinstance(cycle.train, TrainConfig) and cycle.train.mode == mode
    assert cycle.train.data == cycle.data
    steps = re.search(r"--max_steps (\d+)", STUDY_COMMANDS[name])
    assert cycle.train.max_steps == (int(steps.group(1)) if steps else 1000)
    if name == "seq-pretrain":
        assert cycle.train.output_dir == "./checkpoints/gpt2_finance_pretrain"
    if name == "efficiency":
        t = cycle.train
        assert (t.batch_size, t.gradient_accumulation_steps, t.max_length, t.save_steps, t.save_total_limit) == (
            4,
            4,
            256,
            200,
            3,
        )


def test_main_accepts_dashes_and_every_flag_of_dlm_run():
    cycle = parse(
        [
            "--model",
            "tiny-gpt2",
            "--dataset",
            "openai/gsm8k",
            "--dataset-config",
            "main",
            "--max-steps",
            "7",
            "--data-fraction",
            "0.25",
            "--lora",
            "--lora-r",
            "4",
            "--tasks",
            "dlm_gsm8k",
            "--num-fewshot",
            "5",
            "--limit",
            "3",
            "--transfer",
            "--results-dir",
            "somewhere",
        ]
    )
    assert cycle.train.max_steps == 7 and cycle.train.data_fraction == 0.25 and cycle.train.adapter.r == 4
    assert cycle.data.parts[0].config == "main"
    protocol = cycle.protocol
    assert (protocol.tasks, protocol.num_fewshot, protocol.limit, cycle.transfer, cycle.evaluation.results_dir) == (
        ("dlm_gsm8k",),
        5,
        3.0,
        True,
        "somewhere",
    )
    assert cycle.train.protocol is protocol  # one protocol for the SFT prompts, the curve points and the scores


def test_main_bad_input_is_one_error_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        seed_main.main(["--model", "tiny-gpt2", "--datasets", TFNS, FPB, "--mixture_rates", "0.5"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "one rate per dataset" in err[0]


def parse(argv: list[str]):
    """What `python main.py ARGV` (= `dlm run ARGV`) would run: the same parser, nothing run."""
    return run_config(cli.parse_settings("run", argv))


# --- what a run is: approach, domain, default tasks ----------------------------------------------------------
def _train(data: dict, mode="sft") -> TrainConfig:
    return TrainConfig(model="tiny-gpt2", **data, mode=mode, max_steps=1)


def test_approach_classification():
    single = {"dataset": TFNS}
    mixture = {"datasets": (TFNS, FPB)}
    pretrain_origin = RunRecord("a", "train", approach="pretrain", domain="finance", train=TrainPart(mode="pretrain"))
    sft_origin = RunRecord("b", "train", approach="sft", domain="finance", train=TrainPart(mode="sft"))
    assert study_cycle.classify_approach(None, None) == "zero-shot"
    assert study_cycle.classify_approach(_train(single, "pretrain"), None) == "pretrain"
    assert study_cycle.classify_approach(_train(single, "sft"), None) == "sft"
    assert study_cycle.classify_approach(_train(mixture, "sft"), None) == "multitask"
    assert study_cycle.classify_approach(_train(mixture, "pretrain"), None) == "multitask"
    assert study_cycle.classify_approach(_train(single), pretrain_origin) == "sequential"
    assert study_cycle.classify_approach(_train(mixture), pretrain_origin) == "sequential"  # the base wins
    assert study_cycle.classify_approach(_train(single), sft_origin) == "sft"  # only pretrain -> X is sequential
    assert study_cycle.classify_approach(None, pretrain_origin) == "pretrain"  # re-scoring a trained checkpoint


def test_domain_comes_from_the_dataset_table():
    assert study_cycle.data_domains(MixtureSpec.from_flags(datasets=[TFNS, FPB])) == ["finance"]
    both = study_cycle.data_domains(
        MixtureSpec.from_flags(datasets=[TFNS, "openai/gsm8k"], dataset_configs=[None, "main"])
    )
    assert both == ["finance", "math"] and study_cycle.domain_label(both) == "mixed"
    assert study_cycle.domain_label(study_cycle.data_domains(MixtureSpec.single("glue", "sst2"))) == "general"
    assert study_cycle.domain_label([]) is None


def test_default_tasks_follow_the_domain_and_transfer_adds_the_others():
    from dlm.harness_tasks.catalog import DOMAIN_GROUPS

    every = list(DOMAIN_GROUPS.values())
    assert study_cycle.default_tasks(["finance"], transfer=False) == [DOMAIN_GROUPS["finance"]]
    transfer = study_cycle.default_tasks(["math"], transfer=True)
    assert transfer[0] == DOMAIN_GROUPS["math"] and sorted(transfer) == sorted(every)
    assert sorted(study_cycle.default_tasks(["finance", "math"], transfer=False)) == sorted(
        [DOMAIN_GROUPS["finance"], DOMAIN_GROUPS["math"]]
    )
    assert sorted(study_cycle.default_tasks(["corpus"], transfer=False)) == sorted(every)  # no group of its own
    assert sorted(study_cycle.default_tasks([], transfer=False)) == sorted(every)
    cycle = run_config({"model": "tiny-gpt2", "tasks": "dlm_fpb, dlm_tfns", "transfer": True, "max_steps": 0})
    assert study_cycle.choose_tasks(cycle, ["finance"]) == ["dlm_fpb", "dlm_tfns"]  # --tasks overrides


# --- plans -------------------------------------------------------------------------------------------------
BAD_PLANS = [  # (text, line, column, what the message must say)
    ("runs:\n  - model: tiny-gpt2\n    dataset: [stanfordnlp/imdb\n    mode: sft\n", 4, 9, r"invalid YAML"),
    (
        "runs:\n  - model: tiny-gpt2\n    dataset: stanfordnlp/imdb\n    max_step: 5\n",
        4,
        5,
        r"did you mean 'max_steps'",
    ),
    (
        "defaults:\n  model: tiny-gpt2\nruns:\n  - {dataset: stanfordnlp/imdb, max_steps: ten}\n",
        4,
        44,
        r"max_steps.*integer",
    ),
    ("defaults: {model: tiny-gpt2}\nmatrix:\n  approach: [zero-shot, finetune]\n", 3, 25, r"approach must be"),
    (
        "defaults: {model: tiny-gpt2}\nruns:\n  - {name: a, approach: zero-shot}\n  - {name: b, from: a, "
        "dataset: stanfordnlp/imdb}\n",
        4,
        5,
        r"from: a.*earlier training run",
    ),
    ("defaults: {model: tiny-gpt2}\nrunz: []\n", 2, 1, r"did you mean 'runs'"),
    ("defaults:\n  model: tiny-gpt2\n  model: gpt2\nruns: [{approach: zero-shot}]\n", 3, 3, r"twice"),
    (
        "runs:\n  - model: tiny-gpt2\n    datasets: [stanfordnlp/imdb, glue]\n    dataset_configs: [None, sst2]\n"
        "    mixture_rates: [0.5]\n",
        2,
        5,
        r"one rate per dataset",
    ),
    ("runs:\n  - model: tiny-gpt2\n    dataset: imbd\n", 2, 5, r"did you mean 'stanfordnlp/imdb'"),
]


@pytest.mark.parametrize("text,line,column,message", BAD_PLANS)
def test_malformed_plan_names_line_and_column(tmp_path, text, line, column, message):
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    with pytest.raises(UserError) as err:
        load_plan(str(plan))
    assert f"line {line}, column {column}" in str(err.value), str(err.value)
    assert re.search(message, str(err.value)), str(err.value)


@pytest.mark.parametrize("path", sorted((ROOT / "plans").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_plans_load_and_their_commands_round_trip_through_main(path, monkeypatch):
    plan = load_plan(str(path))
    monkeypatch.delenv("DLM_DATA_DIR")  # the option's environment variable would add --data_dir on the way back
    assert plan.runs and len({r.key for r in plan.runs}) == len(plan.runs)
    names = [r.name for r in plan.runs]
    for run in plan.runs:
        if run.after:  # sequential: starts from the checkpoint of an earlier training run of the same plan
            upstream = plan.runs[names.index(run.after)]
            assert names.index(run.after) < names.index(run.name) and upstream.trains
            assert run.settings["model"] == upstream.settings["output_dir"]
        command = settings.command_line(run.settings, ("python", "main.py"))
        reparsed = cli.parse_settings("run", command[2:])
        assert settings.command_line(reparsed, ("python", "main.py")) == command


def test_plan_phases_cover_the_study(tmp_path):
    phases = {p.stem: load_plan(str(p)) for p in (ROOT / "plans").glob("phase*.yaml")}
    assert sorted(phases) == [
        "phase1_baselines",
        "phase1_large_models",
        "phase2_pretrain",
        "phase3_finetune",
        "phase4_transfer",
        "phase5_ablations",
    ]
    large = phases["phase1_large_models"].runs
    assert {r.settings["model"] for r in large} == {"openai:gpt-4o-2024-08-06", "anthropic:claude-3-5-sonnet-20240620"}
    assert {r.settings["num_fewshot"] for r in large} == {0, 5} and all(r.settings["max_cost"] for r in large)
    ablation = phases["phase5_ablations"].runs
    assert {r.settings.get("data_fraction") for r in ablation} >= {0.25, 0.5, 0.75, 1.0}
    assert {r.settings.get("model") for r in ablation} >= {"gpt2", "gpt2-medium", "qwen2-0.5b"}
    assert all(r.settings.get("transfer") for r in phases["phase4_transfer"].runs)
    assert any(r.after for r in phases["phase3_finetune"].runs)


def test_with_resume_continues_an_interrupted_training_run(tmp_path):
    from dlm.plan.file import PlanRun

    out = tmp_path / "ckpt"
    run = PlanRun("r", {"model": "tiny-gpt2", "dataset": TFNS, "output_dir": str(out)}, "k")
    assert "resume" not in plan_runner.with_resume(run)
    (out / "checkpoint-4").mkdir(parents=True)
    assert plan_runner.with_resume(run)["resume"] is True
    (out / "checkpoint-4").rmdir()
    (out / "config.json").write_text("{}")  # a dir dlm did not mark: never overwritten by a plan
    assert "resume" not in plan_runner.with_resume(run) and "overwrite" not in plan_runner.with_resume(run)
    (out / ".dlm-output.json").write_text('{"owner": "dlm", "run_key": "k", "entries": ["config.json"]}')
    assert plan_runner.with_resume(run)["resume"] is True  # its own dir, stopped before a checkpoint


# --- real cycles on tiny-gpt2 and samples/ ------------------------------------------------------------------------
def test_zero_shot_scores_are_computed_once_per_model_task_shots_limit(tiny_model_dir, results_dir, capsys):
    cycle = run_config(
        {
            "model": "tiny-gpt2",
            "tasks": "dlm_fpb",
            "limit": 3,
            "bootstrap_iters": 0,
            "results_dir": str(results_dir),
            "max_steps": 0,
        }
    )
    first = study_cycle.run_cycle(cycle)
    assert first["kind"] == "cycle" and first["approach"] == "zero-shot"
    assert {s["task"] for s in first["eval"]["scores"]} == {"dlm_fpb"}
    capsys.readouterr()

    again = study_cycle.run_cycle(cycle)
    assert "reusing stored zero-shot scores" in capsys.readouterr().out
    assert again["reused_from"] == [first["run_id"]] and again["eval"]["scores"] == first["eval"]["scores"]
    assert [r["run_id"] for r in records(results_dir)] == [first["run_id"]]  # nothing recomputed or written

    wider = study_cycle.run_cycle(
        run_config(
            {
                "model": "tiny-gpt2",
                "tasks": "dlm_fpb,dlm_tfns",
                "limit": 3,
                "bootstrap_iters": 0,
                "results_dir": str(results_dir),
                "max_steps": 0,
            }
        )
    )
    stored = records(results_dir)
    assert len(stored) == 2 and stored[-1]["eval"]["tasks"] == ["dlm_tfns"]  # only the missing task ran
    assert {s["task"] for s in wider["eval"]["scores"]} == {"dlm_fpb", "dlm_tfns"}

    other_limit = zero_shot.zero_shot_key(run_config({"model": "tiny-gpt2", "limit": 4, "max_steps": 0}).evaluation)
    assert other_limit != first["zero_shot_key"]  # a different key is evaluated afresh
    assert first["zero_shot_key"]["dtype"] == "float32" == first["eval"]["dtype"]


def test_zero_shot_reuse_needs_the_same_task_version_and_snapshot(tiny_model_dir, results_dir, tmp_path, capsys):
    import json
    import shutil

    snapshot = tmp_path / "snapshot"
    shutil.copytree(ROOT / "samples" / "takala", snapshot / "takala")
    cycle = run_config(
        {
            "model": "tiny-gpt2",
            "tasks": "dlm_fpb",
            "limit": 3,
            "bootstrap_iters": 0,
            "results_dir": str(results_dir),
            "data_dir": str(snapshot),
            "max_steps": 0,
        }
    )
    first = study_cycle.run_cycle(cycle)
    path = next(results_dir.glob("*.json"))
    stored = json.loads(path.read_text())
    for sc in stored["eval"]["scores"]:
        sc["version"] = "0.9"  # as if scored with an older prompt
    path.write_text(json.dumps(stored))
    capsys.readouterr()
    second = study_cycle.run_cycle(cycle)
    assert "reusing" not in capsys.readouterr().out and second["run_id"] != first["run_id"]

    edited = next(p for p in (snapshot / "takala").rglob("*") if p.is_file())
    import os

    os.utime(edited, ns=(edited.stat().st_atime_ns, edited.stat().st_mtime_ns + 10**9))
    key = zero_shot.zero_shot_key(replace(cycle.evaluation, protocol=cycle.protocol.with_tasks(["dlm_fpb"])))
    assert key == second["zero_shot_key"]  # touched (as a git clone does): the same data
    edited.write_bytes(edited.read_bytes() + b"\n")
    assert zero_shot.zero_shot_key(cycle.evaluation) != second["zero_shot_key"]  # an edited snapshot is another source


@pytest.mark.parametrize("name,approach", [("fin-multitask", "multitask"), ("wikitext", "pretrain")])
def test_study_command_runs_end_to_end_through_main(name, approach, tiny_model_dir, tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = (
        study_argv(name, steps=2)
        + FAST_TRAIN
        + FAST_EVAL
        + ["--tasks", "dlm_tfns", "--output_dir", str(tmp_path / "ckpt"), "--results_dir", str(runs)]
    )
    seed_main.main(argv)

    [record] = records(runs)  # one cycle = one record, train and eval together
    assert record["kind"] == "cycle" and record["approach"] == approach
    assert record["domain"] == {"fin-multitask": "finance", "wikitext": "corpus"}[name]
    assert record["train"]["global_step"] == 2 and record["train"]["output_dir"] == str(tmp_path / "ckpt")
    assert {s["task"] for s in record["eval"]["scores"]} == {"dlm_tfns"}
    assert record["command"][:2] == ["python", "main.py"]
    assert "dlm_tfns" in capsys.readouterr().out  # the score table was printed


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, tiny_model_dir):
    """The demo, killed after its first two runs, then run again: it must finish the rest without duplicates."""
    out = tmp_path_factory.mktemp("demo")
    results, plot = out / "runs", out / "demo.png"
    calls = []
    real_run_cycle = study_cycle.run_cycle

    def interrupted(cycle):
        calls.append(cycle)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_run_cycle(cycle)

    printed, errors = io.StringIO(), io.StringIO()  # what the demo shows, both halves (tqdm writes to sys.stderr)
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(printed), redirect_stderr(errors):
        patch.chdir(out)
        patch.setattr(plan_run, "run_cycle", interrupted)
        with pytest.raises(KeyboardInterrupt):
            demo_module.demo(results_dir=str(results), plot=str(plot))
        before = records(results)
        patch.setattr(plan_run, "run_cycle", real_run_cycle)
        demo_module.demo(results_dir=str(results), plot=str(plot))
    return {
        "results": results,
        "plot": plot,
        "before": before,
        "after": records(results),
        "out": printed.getvalue(),
        "err": errors.getvalue(),
    }


def test_the_demo_warns_about_nothing_of_its_own_and_shows_no_library_bar(demo_run):
    """samples/ keeps every training split apart from every scored split (samples/disjoint.py)."""
    assert "[4/4] pretrain-then-sft" in demo_run["out"]  # the demo's own lines were captured
    assert "contamination" not in demo_run["out"] + demo_run["err"]
    assert "%|" not in demo_run["err"], demo_run["err"]
    checked = [c for r in demo_run["after"] for c in ((r.get("train") or {}).get("contamination") or [])]
    assert checked and not [c for c in checked if c.get("above_threshold")]


def test_demo_runs_every_approach_and_reports_against_gpt4(demo_run, capsys):
    after = demo_run["after"]
    assert sorted(r["approach"] for r in after) == ["pretrain", "sequential", "sft", "zero-shot"]
    assert all(r["kind"] == "cycle" and r["eval"]["scores"] for r in after)
    sequential = next(r for r in after if r["approach"] == "sequential")
    pretrain = next(r for r in after if r["approach"] == "pretrain")
    assert sequential["starts_from"]["run_id"] == pretrain["run_id"]
    assert demo_run["plot"].stat().st_size > 0
    from dlm.results.report import render_report

    text = render_report(demo_run["results"], against="gpt-4", fmt="markdown")
    assert "gpt-4" in text.lower() and "demonstrate the pipeline" in text


def test_plain_report_after_the_demo_is_one_screen_of_the_demo(demo_run, capsys, monkeypatch, tmp_path):
    """`dlm report` with no flags reads what the demo wrote; at COLUMNS=100 it fits one screen, names whole."""
    from dlm.results.report import build_report

    monkeypatch.chdir(tmp_path)  # no runs/ here: only the note of the last writer can lead to the demo
    monkeypatch.setenv("COLUMNS", "100")
    demo_module.demo(results_dir=str(demo_run["results"]), plot=None)  # every run finished: skipped, reported
    assert f"next: dlm report --results-dir {demo_run['results']}" in capsys.readouterr().out
    cli.main(["report"])
    shown = capsys.readouterr()
    assert f"reading {demo_run['results'].resolve()}" in shown.err
    lines = shown.out.splitlines()
    assert len(lines) <= 80 and max(len(line) for line in lines) <= 100, (len(lines), shown.out)
    report = build_report(demo_run["results"])
    deciding = {t for v in report["criteria"] for e in v["evidence"] for t in e.get("tasks", [])}
    deciding |= {e["task"] for v in report["hypotheses"] for e in v["evidence"] if "task" in e}
    assert deciding and all(task in shown.out for task in deciding)
    assert all(run["label"] in shown.out and run["run_id"] in shown.out.replace("\n", "") for run in report["runs"])
    assert "…" not in shown.out and "RQ5" in shown.out


def test_plan_resumes_after_an_interruption_without_duplicates(demo_run, capsys):
    before, after = demo_run["before"], demo_run["after"]
    assert len(before) == 2 and len(after) == 4
    assert [r["run_id"] for r in after[:2]] == [r["run_id"] for r in before]  # finished runs were not redone
    assert len({r["plan_key"] for r in after}) == 4
    plan_runner.run_plan(
        str(demo_module.DEMO_PLAN),
        results_dir=str(demo_run["results"]),
        report=False,
        checkpoints_dir=str(demo_run["results"].parent / "checkpoints"),
    )
    assert "4 finished already, 0 to run" in capsys.readouterr().out
    assert len(records(demo_run["results"])) == 4


def test_plan_dry_run_prints_the_commands_and_marks_finished_runs(demo_run, capsys):
    plan_runner.run_plan(str(demo_module.DEMO_PLAN), dry_run=True, results_dir=str(demo_run["results"]))
    lines = [line for line in capsys.readouterr().out.splitlines() if " --model " in line]
    assert len(lines) == 4 and all(line.startswith("# done (") for line in lines)
    fresh = demo_run["results"].parent / "empty"
    plan_runner.run_plan(str(demo_module.DEMO_PLAN), dry_run=True, results_dir=str(fresh))
    commands = [
        line for line in capsys.readouterr().out.splitlines() if " --model " in line and not line.startswith("#")
    ]
    assert len(commands) == 4 and not fresh.exists()  # a dry run writes nothing
    assert parse(shlex.split(commands[1])[2:]).train.mode == "pretrain"
