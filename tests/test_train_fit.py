"""SFT examples longer than --max_length are counted and keep their completion (trainers/sft_fit.py)."""

from __future__ import annotations

from train_support import config


def test_fit_example_cuts_the_prompt_from_the_left_and_keeps_the_completion(tiny_model_dir):
    from dlm.trainers.models import load_model
    from dlm.trainers.sft_fit import fit_example

    _, tokenizer = load_model("tiny-gpt2")
    prompt = " ".join(f"word{i}" for i in range(200)) + "\nAnswer:"
    fitted = fit_example({"prompt": prompt, "completion": " positive"}, tokenizer, 32)
    assert fitted["_dlm_fit"] == 1 and fitted["completion"] == " positive"
    assert fitted["prompt"].endswith("\nAnswer:") and "word0 " not in fitted["prompt"]
    ids = tokenizer(fitted["prompt"] + fitted["completion"], add_special_tokens=False)["input_ids"]
    assert len(ids) + 1 <= 32  # + EOS
    short = fit_example({"prompt": "Text: up\nAnswer:", "completion": " positive"}, tokenizer, 32)
    assert short["_dlm_fit"] == 0 and short["prompt"] == "Text: up\nAnswer:"
    too_long = fit_example({"prompt": "x", "completion": " word" * 80}, tokenizer, 32)
    assert too_long["_dlm_fit"] == 2


def test_a_run_with_a_short_max_length_counts_what_it_cut(tmp_path, tiny_model_dir):
    from dlm.trainers.train import train

    result = train(config(tmp_path, "fit", mode="sft", max_length=24, max_steps=1))
    fitted = result.record["train"]["fit_to_max_length"]
    assert fitted["examples"] > 0 and fitted["prompts_cut_from_left"] > 0
    assert fitted["prompts_cut_from_left"] + fitted["completions_too_long"] <= fitted["examples"]
    # every example survives: the packed rows hold as many examples as the data had
    assert result.record["train"]["examples"] == fitted["examples"]


def test_a_small_run_after_a_large_one_records_its_own_smaller_peak(tmp_path, tiny_model_dir):
    from dlm.trainers.train import train

    large = train(config(tmp_path, "large", batch_size=64, max_length=256, max_steps=1))
    small = train(config(tmp_path, "small", batch_size=1, max_length=16, max_steps=1))
    assert small.record["train"]["peak_memory_mb"] < large.record["train"]["peak_memory_mb"]


def test_a_non_finite_run_fails_with_a_failed_record_and_no_final_model(tmp_path, tiny_model_dir, capsys):
    """Weights that are finite but so large that the first forward pass overflows: the loss is not finite, the
    run is recorded as failed and no final model is written. (A learning rate of 1e308 used to do this; it is
    refused before training now, as out of range.)"""
    import json
    import shutil

    import pytest
    from safetensors.torch import load_file, save_file

    from dlm import cli

    huge = tmp_path / "huge-gpt2"
    shutil.copytree(tiny_model_dir, huge)
    weights = load_file(huge / "model.safetensors")
    weights = {k: v * 3e38 if k.endswith("ln_f.weight") else v for k, v in weights.items()}
    save_file(weights, huge / "model.safetensors", metadata={"format": "pt"})
    out, runs = tmp_path / "out", tmp_path / "runs"
    with pytest.raises(SystemExit) as exit_:
        cli.main(
            [
                "train",
                "--model",
                str(huge),
                "--dataset",
                "glue",
                "--dataset_config",
                "sst2",
                "--max_steps",
                "2",
                "--max_length",
                "32",
                "--output_dir",
                str(out),
                "--results-dir",
                str(runs),
            ]
        )
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # the lines above it are the progress lines
    assert exit_.value.code == 2 and last.startswith("error: ") and "--learning_rate" in last, last
    (record,) = [json.loads(p.read_text()) for p in runs.glob("*.json")]
    assert record["status"] == "failed" and "finite" in record["error"]
    assert not (out / "model.safetensors").exists() and not (out / "dlm_lineage.json").exists()
