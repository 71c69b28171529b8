"""Progress that is true: in quiet mode no library progress bar (`%|`) reaches stderr from train, eval, run or plan
(the demo: tests/test_pipeline.py); a long request pass shows done/total counts; curve scoring names each task it
scores with its time."""

from __future__ import annotations

import pytest

from dlm import cli, quiet

BAR = "%|"  # what every tqdm bar prints: "Map:  0%|          | 0/72"


@pytest.fixture
def fresh_data_cache(tmp_path, monkeypatch):
    """The datasets library converts and maps the snapshots again (a cache hit would hide its bars)."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))


def _run(argv: list[str], capfd) -> tuple[str, str]:
    cli.main(argv)
    captured = capfd.readouterr()
    return captured.out, captured.err


def test_train_with_curve_points_shows_each_task_and_no_bar(tmp_path, monkeypatch, capfd, fresh_data_cache):
    monkeypatch.chdir(tmp_path)
    out, err = _run(
        [
            "train",
            "--model",
            "tiny-gpt2",
            "--dataset",
            "zeroshot/twitter-financial-news-sentiment",
            "--mode",
            "sft",
            "--max_steps",
            "2",
            "--batch_size",
            "2",
            "--gradient_accumulation_steps",
            "1",
            "--eval_steps",
            "2",
            "--eval_tasks",
            "fin_sentiment",
            "--eval_limit",
            "3",
            "--output_dir",
            "ckpt",
        ],
        capfd,
    )
    assert BAR not in err, err
    for step in (0, 2):  # the group's three tasks, one line each with its score and time, at every point
        assert f"curve point at step {step}: 3 tasks scored in " in err
    for k, task in enumerate(("dlm_fpb", "dlm_tfns", "dlm_fiqa_sa"), 1):
        assert out.count(f"[dlm eval] curve task {k}/3: {task} acc ") == 2, out


def test_eval_counts_its_answers_and_shows_no_bar(tmp_path, monkeypatch, capfd, fresh_data_cache):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(quiet, "COUNT_EVERY_S", 0.0)  # every answer counted (5 s apart otherwise)
    out, err = _run(["eval", "--model", "tiny-gpt2", "--tasks", "dlm_tfns_gen", "--limit", "3"], capfd)
    assert BAR not in err, err
    line = next(line for line in out.splitlines() if "generating 3 answers" in line)
    assert " ... 1/3 2/3 " in line and line.endswith(" s"), line


def test_run_and_plan_show_no_bar(tmp_path, monkeypatch, capfd, fresh_data_cache):
    monkeypatch.chdir(tmp_path)
    _, err = _run(
        [
            "run",
            "--model",
            "tiny-gpt2",
            "--dataset",
            "gbharti/finance-alpaca",
            "--mode",
            "pretrain",
            "--max_steps",
            "2",
            "--tasks",
            "dlm_fiqa_sa",
            "--limit",
            "3",
            "--output_dir",
            "ckpt",
        ],
        capfd,
    )
    assert BAR not in err, err  # the contamination check read the task's data: the datasets library's Map bars
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "name: tiny\ndefaults: {model: tiny-gpt2, tasks: dlm_tfns, limit: 3, max_steps: 2, batch_size: 2,"
        " gradient_accumulation_steps: 1}\nruns:\n  - {name: zero-shot, approach: zero-shot}\n"
        "  - {name: sft, approach: sft, data: zeroshot/twitter-financial-news-sentiment}\n"
    )
    out, err = _run(["plan", str(plan), "--results-dir", "plan-runs"], capfd)
    assert BAR not in err, err
    assert "plan tiny: 2 runs, 0 finished already, 2 to run" in out


def test_the_tiny_model_is_built_without_a_bar(tmp_path, monkeypatch, capfd):
    from dlm.trainers.tiny import tiny_gpt2_path

    monkeypatch.setenv("DLM_CACHE", str(tmp_path / "cache"))  # a first run: the model is built now
    assert (tiny_gpt2_path() / "model.safetensors").is_file()
    assert BAR not in capfd.readouterr().err
