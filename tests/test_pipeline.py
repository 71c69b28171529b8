"""Cycles, main.py, plans and the demo: what a run is called, what it is scored on, what is reused or resumed.

Runs are real (tiny-gpt2, samples/, lm-eval on the dlm_* tasks) but kept to a few steps and `limit 3` scoring.
"""
from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

import pytest

import main as seed_main
import pipeline
from plan_file import load_plan
from results.store import load_records
from trainers.config import MixtureSpec, TrainConfig
from trainers.errors import UserError

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
    return load_records(results_dir)[0]


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
    "fin-mix3-no-steps": ("sft", [(TFNS, None), (FPB, None), ("FinGPT/fingpt-sentiment-train", None)],
                          [0.4, 0.3, 0.3]),
    "efficiency": ("sft", [("stanfordnlp/imdb", None)], [1.0]),
}


@pytest.mark.parametrize("name", list(STUDY_COMMANDS))
def test_study_plan_command_lines_parse_onto_the_same_cycle_as_dlm_run(name):
    argv = shlex.split(STUDY_COMMANDS[name])[2:]
    cycle = seed_main.parse(argv)
    mode, parts, rates = EXPECTED[name]
    assert cycle.model == argv[argv.index("--model") + 1]
    assert [(p.dataset, p.config) for p in cycle.data.parts] == parts
    assert cycle.data.rates == pytest.approx(rates)
    if mode is None:
        assert cycle.train is None  # --max_steps 0 / --evaluation_only: evaluate as is
        return
    assert isinstance(cycle.train, TrainConfig) and cycle.train.mode == mode
    assert cycle.train.data is cycle.data
    steps = re.search(r"--max_steps (\d+)", STUDY_COMMANDS[name])
    assert cycle.train.max_steps == (int(steps.group(1)) if steps else 1000)
    if name == "seq-pretrain":
        assert cycle.train.output_dir == "./checkpoints/gpt2_finance_pretrain"
    if name == "efficiency":
        t = cycle.train
        assert (t.batch_size, t.gradient_accumulation_steps, t.max_length, t.save_steps, t.save_total_limit) == \
               (4, 4, 256, 200, 3)


def test_main_accepts_dashes_and_every_flag_of_dlm_run():
    cycle = seed_main.parse(["--model", "tiny-gpt2", "--dataset", "openai/gsm8k", "--dataset-config", "main",
                             "--max-steps", "7", "--data-fraction", "0.25", "--lora", "--lora-r", "4",
                             "--tasks", "dlm_gsm8k", "--num-fewshot", "5", "--limit", "3", "--transfer",
                             "--results-dir", "somewhere"])
    assert cycle.train.max_steps == 7 and cycle.train.data_fraction == 0.25 and cycle.train.lora.r == 4
    assert cycle.data.parts[0].config == "main"
    assert (cycle.tasks, cycle.num_fewshot, cycle.limit, cycle.transfer, cycle.results_dir) == \
           ("dlm_gsm8k", 5, 3.0, True, "somewhere")


def test_main_bad_input_is_one_error_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        seed_main.main(["--model", "tiny-gpt2", "--datasets", TFNS, FPB, "--mixture_rates", "0.5"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "one rate per dataset" in err[0]


# --- what a run is: approach, domain, default tasks ----------------------------------------------------------
def _train(data: MixtureSpec, mode="sft") -> TrainConfig:
    return TrainConfig(model="tiny-gpt2", data=data, mode=mode, max_steps=1)


def test_approach_classification():
    single = MixtureSpec.single(TFNS)
    mixture = MixtureSpec.from_flags(datasets=[TFNS, FPB])
    pretrain_origin = {"run_id": "a", "approach": "pretrain", "domain": "finance", "train": {"mode": "pretrain"}}
    sft_origin = {"run_id": "b", "approach": "sft", "domain": "finance", "train": {"mode": "sft"}}
    assert pipeline.classify_approach(None, None) == "zero-shot"
    assert pipeline.classify_approach(_train(single, "pretrain"), None) == "pretrain"
    assert pipeline.classify_approach(_train(single, "sft"), None) == "sft"
    assert pipeline.classify_approach(_train(mixture, "sft"), None) == "multitask"
    assert pipeline.classify_approach(_train(mixture, "pretrain"), None) == "multitask"
    assert pipeline.classify_approach(_train(single), pretrain_origin) == "sequential"
    assert pipeline.classify_approach(_train(mixture), pretrain_origin) == "sequential"  # the base wins
    assert pipeline.classify_approach(_train(single), sft_origin) == "sft"  # only pretrain -> X is sequential
    assert pipeline.classify_approach(None, pretrain_origin) == "pretrain"  # re-scoring a trained checkpoint


def test_domain_comes_from_the_dataset_table():
    assert pipeline.data_domains(MixtureSpec.from_flags(datasets=[TFNS, FPB])) == ["finance"]
    both = pipeline.data_domains(MixtureSpec.from_flags(datasets=[TFNS, "openai/gsm8k"], dataset_configs=[None, "main"]))
    assert both == ["finance", "math"] and pipeline.domain_label(both) == "mixed"
    assert pipeline.domain_label(pipeline.data_domains(MixtureSpec.single("glue", "sst2"))) == "general"
    assert pipeline.domain_label([]) is None


def test_default_tasks_follow_the_domain_and_transfer_adds_the_others():
    from harness_tasks.catalog import DOMAIN_GROUPS

    every = list(DOMAIN_GROUPS.values())
    assert pipeline.default_tasks(["finance"], transfer=False) == [DOMAIN_GROUPS["finance"]]
    transfer = pipeline.default_tasks(["math"], transfer=True)
    assert transfer[0] == DOMAIN_GROUPS["math"] and sorted(transfer) == sorted(every)
    assert sorted(pipeline.default_tasks(["finance", "math"], transfer=False)) == \
           sorted([DOMAIN_GROUPS["finance"], DOMAIN_GROUPS["math"]])
    assert sorted(pipeline.default_tasks(["corpus"], transfer=False)) == sorted(every)  # no group of its own
    assert sorted(pipeline.default_tasks([], transfer=False)) == sorted(every)
    cycle = pipeline.Cycle(model="tiny-gpt2", tasks="dlm_fpb, dlm_tfns", transfer=True)
    assert pipeline.choose_tasks(cycle, ["finance"]) == ["dlm_fpb", "dlm_tfns"]  # --tasks overrides


# --- plans -------------------------------------------------------------------------------------------------
BAD_PLANS = [  # (text, line, column, what the message must say)
    ("runs:\n  - model: tiny-gpt2\n    dataset: [stanfordnlp/imdb\n    mode: sft\n", 4, 9, r"invalid YAML"),
    ("runs:\n  - model: tiny-gpt2\n    dataset: stanfordnlp/imdb\n    max_step: 5\n", 4, 5,
     r"did you mean 'max_steps'"),
    ("defaults:\n  model: tiny-gpt2\nruns:\n  - {dataset: stanfordnlp/imdb, max_steps: ten}\n", 4, 44,
     r"max_steps.*integer"),
    ("defaults: {model: tiny-gpt2}\nmatrix:\n  approach: [zero-shot, finetune]\n", 3, 25, r"approach must be"),
    ("defaults: {model: tiny-gpt2}\nruns:\n  - {name: a, approach: zero-shot}\n  - {name: b, from: a, "
     "dataset: stanfordnlp/imdb}\n", 4, 5, r"from: a.*earlier training run"),
    ("defaults: {model: tiny-gpt2}\nrunz: []\n", 2, 1, r"did you mean 'runs'"),
    ("defaults:\n  model: tiny-gpt2\n  model: gpt2\nruns: [{approach: zero-shot}]\n", 3, 3, r"twice"),
    ("runs:\n  - model: tiny-gpt2\n    datasets: [stanfordnlp/imdb, glue]\n    dataset_configs: [None, sst2]\n"
     "    mixture_rates: [0.5]\n", 2, 5, r"one rate per dataset"),
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
def test_shipped_plans_load_and_their_commands_round_trip_through_main(path):
    plan = load_plan(str(path))
    assert plan.runs and len({r.key for r in plan.runs}) == len(plan.runs)
    names = [r.name for r in plan.runs]
    for run in plan.runs:
        if run.after:  # sequential: starts from the checkpoint of an earlier training run of the same plan
            upstream = plan.runs[names.index(run.after)]
            assert names.index(run.after) < names.index(run.name) and upstream.trains
            assert run.settings["model"] == upstream.settings["output_dir"]
        command = seed_main.command_line(run.settings, ("python", "main.py"))
        reparsed = vars(seed_main.build_parser().parse_args(command[2:]))
        assert seed_main.command_line(reparsed, ("python", "main.py")) == command


def test_plan_phases_cover_the_study(tmp_path):
    phases = {p.stem: load_plan(str(p)) for p in (ROOT / "plans").glob("phase*.yaml")}
    assert sorted(phases) == ["phase1_baselines", "phase2_pretrain", "phase3_finetune", "phase4_transfer",
                              "phase5_ablations"]
    ablation = phases["phase5_ablations"].runs
    assert {r.settings.get("data_fraction") for r in ablation} >= {0.25, 0.5, 0.75, 1.0}
    assert {r.settings.get("model") for r in ablation} >= {"gpt2", "gpt2-medium", "qwen2-0.5b"}
    assert all(r.settings.get("transfer") for r in phases["phase4_transfer"].runs)
    assert any(r.after for r in phases["phase3_finetune"].runs)


def test_with_resume_continues_an_interrupted_training_run(tmp_path):
    from plan_file import PlanRun

    out = tmp_path / "ckpt"
    run = PlanRun("r", {"model": "tiny-gpt2", "dataset": TFNS, "output_dir": str(out)}, "k")
    assert "resume" not in pipeline.with_resume(run)
    (out / "checkpoint-4").mkdir(parents=True)
    assert pipeline.with_resume(run)["resume"] is True
    (out / "checkpoint-4").rmdir()
    (out / "config.json").write_text("{}")  # killed while saving the final model: start that run again
    assert pipeline.with_resume(run)["overwrite"] is True
