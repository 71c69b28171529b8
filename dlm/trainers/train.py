"""`train(cfg)`: the one entry point for continued pretraining and SFT (full or LoRA).

Order matters for "nothing half-written": the output directory is checked before any model or data is loaded,
and files appear only when the Trainer saves its first checkpoint. The run record is written at the end by
rank 0 (atomically, secrets scrubbed) to `cfg.results_dir`, and a copy lands in the output directory
(`dlm_train.json`) so a later run that starts from this checkpoint can see where it came from.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from transformers import TrainerState, set_seed
from transformers.trainer_callback import PrinterCallback, ProgressCallback
from transformers.trainer_utils import TrainOutput

from dlm.config import TrainConfig
from dlm.data.table import lookup
from dlm.errors import UserError
from dlm.files import atomic_write
from dlm.quiet import quiet_libraries as _quiet_libraries  # the name bench/ imports
from dlm.secrets import scrub
from dlm.store.leases import try_dir_lease
from dlm.store.lineage import TRAIN_RECORD_FILE, new_lineage, write_lineage
from dlm.store.provenance import new_run_id, provenance
from dlm.store.records import to_record, write_record
from dlm.trainers import chat, estimate, runtime, trackers
from dlm.trainers.cards import cards_after_training
from dlm.trainers.chat import check
from dlm.trainers.checkpoints import (
    check_unfinished,
    claim,
    claim_pending,
    clear_output_dir,
    out_of_room,
    prepare_output_dir,
    record_written,
    resumed_step,
    run_identity,
)
from dlm.trainers.clock import RunClock
from dlm.trainers.curve import CurveRun
from dlm.trainers.guards import (
    NonFiniteTraining,
    check_finite_weights,
    check_has_examples,
    finite_loss_callback,
)
from dlm.trainers.mixture import training_dataset
from dlm.trainers.model_check import check_model
from dlm.trainers.models import (
    apply_lora,
    check_max_length,
    count_params,
    default_lr,
    hub_revision,
    is_adapter_dir,
    load_model,
    resolve_model,
)
from dlm.trainers.pretrain import build_pretrain_trainer
from dlm.trainers.progress import make_progress_callback
from dlm.trainers.scrubbing import OwnedOutput, publish_into
from dlm.trainers.sft import build_sft_trainer, packing_stats
from dlm.trainers.sft_fit import fit_to_max_length

RECORD_IN_OUTPUT = TRAIN_RECORD_FILE  # the training record copied beside the weights
MERGED_SUBDIR = "merged"
STAGING_PREFIX = ".dlm-staging-"  # the final model is saved here, inside the output dir, then moved into place


@dataclass
class TrainResult:
    record: dict
    model: Any
    tokenizer: Any
    output_dir: str


def run_slug(cfg: TrainConfig) -> str:
    model = Path(cfg.model.rstrip("/")).name or cfg.model
    data = "+".join(p.dataset.split("/")[-1] + (f"-{p.config}" if p.config else "") for p in cfg.data.parts)
    return f"{cfg.mode}{'-lora' if cfg.lora else ''}-{model}-{data}"


def train(cfg: TrainConfig, status: str = "ok", evaluator=None) -> TrainResult:
    """`status`: what the training record says once training is done; a train -> evaluate cycle passes
    "incomplete" (the evaluation is still to come) and its own record replaces this one when it finishes.
    `evaluator(model, tokenizer) -> scores`: what `--eval_steps` scores with (trainers/curve.py)."""
    with _quiet_libraries(), output_dir_lease(cfg):
        return _train(cfg, status, evaluator)


@contextmanager
def output_dir_lease(cfg: TrainConfig):
    """One writer per output dir: an exclusive lock on the directory itself for the whole run (store/leases.py),
    taken before it is checked, so a second `dlm train` into it, whatever its run key, is refused with one line. A
    directory made here only to be locked is removed again if the run fails before writing into it."""
    if not cfg.output_dir:  # checkpoints/<new run id>: no other process can be writing there
        yield
        return
    runtime.init_distributed()
    directory = Path(cfg.output_dir).expanduser().resolve()
    lease, made, refused = None, False, None
    if runtime.is_main_process():
        if directory.exists() and not directory.is_dir():
            raise UserError(f"--output_dir '{cfg.output_dir}' is a file; pass a directory")
        made = not directory.exists()
        directory.mkdir(parents=True, exist_ok=True)
        lease = try_dir_lease(directory)
        if isinstance(lease, str):
            refused, lease = lease, None
    refused = runtime.broadcast_from_main(refused)
    try:
        if refused:
            raise UserError(
                f"--output_dir '{cfg.output_dir}' is being written by {refused} (another dlm run); wait for it "
                "to finish, or give this run its own --output_dir"
            )
        yield
    finally:
        if lease is not None:
            lease.release()
        if made and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()


def _train(cfg: TrainConfig, status: str = "ok", evaluator=None) -> TrainResult:

    cfg.validate()

    for part in cfg.data.parts:  # a misspelt dataset or config fails now, not after the model has loaded
        lookup(part.dataset, part.config)
    check_model(cfg.model, trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle)
    runtime.check_report_to(cfg.report_to)
    runtime.precision(cfg.bf16)  # an impossible --bf16 fails here, before anything is loaded or written
    if cfg.chat_template:  # a model without a template, or a missing file: before the output dir is touched
        check(
            cfg.model,
            cfg.chat_template,
            trust_remote_code=cfg.trust_remote_code,
            system_instruction=cfg.system_instruction,
        )
    runtime.init_distributed()
    run_id = runtime.broadcast_from_main(new_run_id(run_slug(cfg)))
    output_dir = Path(cfg.output_dir or Path("checkpoints") / run_id).expanduser().resolve()

    # Every rank checks before any rank may write; only then does rank 0 clear what dlm wrote there (--overwrite,
    # or this run key's own dir that never reached a checkpoint) and mark the dir as this run's.
    identity = run_identity(cfg.model, cfg.mode, cfg.data.label(), cfg.lora)
    resume_from = prepare_output_dir(
        output_dir, cfg.resume, cfg.overwrite, cfg.run_key, identity, cfg.max_steps, cfg.save_steps
    )
    if resume_from is not None:
        check_unfinished(resume_from, cfg.max_steps, finishing=cfg.run_key is not None)
    restart_own = cfg.resume and resume_from is None and output_dir.is_dir() and any(output_dir.iterdir())
    main = runtime.is_main_process()
    if resume_from is not None and main:
        print(f"Resuming from {resume_from.name}", file=sys.stderr, flush=True)
    elif cfg.resume and main:
        print(f"--resume: no checkpoint in {output_dir} yet; starting from step 0", file=sys.stderr, flush=True)

    started = time.time()
    runtime.reset_peak_memory()  # this run's peak, not one carried over from an earlier run in this process

    clock = RunClock(output_dir, resuming=resume_from is not None, started=started)
    model, tokenizer, model_info = _load_for_training(cfg)

    template = chat.keep_for_training(tokenizer, cfg.chat_template, cfg.model, model_info, cfg.system_instruction)

    check_max_length(model, cfg.max_length, cfg.model)
    dataset, data_info = _training_data(cfg)

    set_seed(cfg.seed)
    if cfg.lora:
        model = apply_lora(model, cfg.adapter.r, cfg.adapter.alpha, cfg.adapter.dropout, cfg.adapter.targets)
        if cfg.gradient_checkpointing:  # checkpointed blocks need an input that requires grad to backprop into LoRA
            model.enable_input_require_grads()

    trainable_params, total_params = count_params(model)
    learning_rate = cfg.learning_rate or default_lr(cfg.mode, cfg.lora, total_params)
    args_kwargs = _training_args(cfg, output_dir, learning_rate)

    time_estimate = estimate.before_training(cfg, total_params, resumed_step(resume_from), runtime.world_size(), main)

    curve = CurveRun(cfg, evaluator, output_dir, resume_from is not None, tokenizer)
    notes = trackers.RunNotes(trackers.run_notes(run_id, cfg)) if cfg.report_to != "none" else None
    callbacks = [
        make_progress_callback(),
        clock.callback(),
        OwnedOutput(output_dir, cfg.save_total_limit),
        finite_loss_callback(),
        estimate.calibration_callback(time_estimate, scoring_s=lambda: curve.eval_seconds),
        *([curve.callback] if curve.callback else []),
        *([notes] if notes else []),
    ]
    if cfg.mode == "pretrain":
        trainer, blocks = build_pretrain_trainer(model, tokenizer, dataset, args_kwargs, cfg.max_length, callbacks)
        packing = {"padded_efficiency": None}  # filled from blocks.stats after training (streams pack lazily)
    else:
        if template is not None:
            dataset = chat.as_chat_pairs(dataset, tokenizer, cfg.system_instruction)
        dataset, fitted = fit_to_max_length(dataset, tokenizer, cfg.max_length)
        if fitted and (fitted["prompts_cut_from_left"] or fitted["completions_too_long"]) and main:
            print(
                f"warning: {fitted['prompts_cut_from_left']} of {fitted['examples']} examples do not fit "
                f"--max_length {cfg.max_length}: their prompts are cut from the left so the completion is kept"
                + (
                    f"; {fitted['completions_too_long']} completions alone are longer and keep their start"
                    if fitted["completions_too_long"]
                    else ""
                ),
                file=sys.stderr,
                flush=True,
            )
        trainer, blocks = build_sft_trainer(model, tokenizer, dataset, args_kwargs, cfg.max_length, callbacks), None
        # a streamed dataset: estimate from its first rows (re-read from the start; training reads them again)
        packing = packing_stats(trainer.train_dataset, cfg.max_length, limit=200 if data_info.get("streamed") else None)
        packing["fit_to_max_length"] = fitted  # None: a streamed set, fitted row by row and not counted
        if packing.get("examples_at_max_length") and main:
            print(
                f"warning: {packing['examples_at_max_length']} of {packing['examples']} examples reach "
                f"--max_length {cfg.max_length} and are cut there; raise --max_length to keep their ends",
                file=sys.stderr,
                flush=True,
            )
    _quiet_trainer(trainer)
    curve.attach(trainer)
    if notes is not None:
        notes.trainer = trainer
    check_has_examples(trainer.train_dataset, cfg.max_length)

    # Only now, with model and data loaded (a bad input has failed by here), is anything removed or written.
    runtime.barrier()
    if main:
        if cfg.overwrite or restart_own:
            clear_output_dir(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        claim(output_dir, cfg.run_key, run_id, identity)
    runtime.barrier()
    train_start = time.time()
    try:
        if resume_from is not None and resumed_step(resume_from) >= cfg.max_steps:
            output = _finish_from(trainer, resume_from)  # stopped after its last checkpoint: nothing to train
        else:
            output = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
        check_finite_weights(trainer.model)
    except NonFiniteTraining as err:
        message = (
            f"{err}; the run is recorded as failed and its checkpoints are not to be trusted. Lower "
            f"--learning_rate (it was {learning_rate:g}) or check the data"
        )
        if main:
            write_record(
                cfg.results_dir,
                {
                    "kind": "train",
                    "run_id": run_id,
                    "status": "failed",
                    "error": message,
                    "command": list(sys.argv),
                    "model": {"name": cfg.model},
                    "train": {"config": cfg.to_dict(), "output_dir": str(output_dir)},
                },
            )
        raise UserError(message) from None
    except (OSError, RuntimeError) as err:  # a full disk while saving a checkpoint (or a curve point)
        raise out_of_room(err, output_dir, output_dir / f"checkpoint-{trainer.state.global_step}") from None
    finally:
        trackers.finish(cfg.report_to)  # the next training in this process must not log into this W&B run
    train_seconds = time.time() - train_start - curve.eval_seconds  # scoring curve points is not training

    # the final model, its record and lineage go to a staging folder first, then into place (trainers/scrubbing.py
    # publish_into): a name that holds something not dlm's (a symlinked README.md) is left alone, never written
    staging = output_dir / f"{STAGING_PREFIX}{run_id}"
    if main:
        claim_pending(output_dir, staging.name)
    runtime.barrier()
    try:
        final_model = _save_final(trainer, tokenizer, staging, cfg, model_info)
    except (OSError, RuntimeError) as err:  # the last checkpoint is whole: --resume saves the final model from it
        raise out_of_room(err, output_dir, staging) from None
    merged = (staging / MERGED_SUBDIR).is_dir()
    if blocks is not None:  # pretrain: what packing gave vs padding each document to max_length
        packing = {
            "padded_efficiency": blocks.stats.padded_efficiency(cfg.max_length),
            "documents": blocks.stats.documents,
            "blocks": blocks.stats.blocks,
        }
    record = _record(
        cfg,
        run_id,
        output_dir,
        trainer,
        output,
        packing,
        data_info,
        model_info,
        learning_rate,
        trainable_params,
        total_params,
        train_seconds,
        time.time() - started,
        merged,
    )
    record["status"] = status
    totals = clock.totals()  # summed over every process that trained this output dir (a resumed run)
    record["train"].update(
        wall_time_s=totals["wall_time_s"],
        train_time_s=round(totals["train_time_s"] - curve.eval_seconds, 3),
        processes=totals["processes"],
        this_process_wall_time_s=totals["this_process_wall_time_s"],
        time_estimate={**time_estimate, "actual_train_s": round(train_seconds, 3)},
        **curve.record_fields(),
    )
    if main:
        write_record(cfg.results_dir, record)  # a full results dir: the record is rescued (store/rescue.py)
        try:
            _write_json(staging / RECORD_IN_OUTPUT, record)
            _write_lineage(cfg, run_id, staging, model_info)
            kept_out = publish_into(staging, output_dir)
            if kept_out:
                print(
                    f"kept {', '.join(kept_out)} in {output_dir} as it is (not written by dlm); dlm's own "
                    f"{'copy was' if len(kept_out) == 1 else 'copies were'} not written there",
                    file=sys.stderr,
                    flush=True,
                )
            cards_after_training(output_dir, provenance())  # README.md: lineage now, scores once evaluated
            record_written(output_dir, [], complete=True)
        except OSError as err:
            raise out_of_room(err, output_dir, None) from None
    runtime.barrier()
    return TrainResult(record=record, model=final_model, tokenizer=tokenizer, output_dir=str(output_dir))


def _finish_from(trainer, checkpoint: Path) -> TrainOutput:
    """A run stopped between its last checkpoint and its final model: the checkpoint's weights and state, no step
    trained (Trainer.train resumed at max_steps would train one step more before it checks)."""
    trainer._load_from_checkpoint(str(checkpoint))  # the weights as train(resume_from_checkpoint=...) loads them
    trainer.state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    return TrainOutput(trainer.state.global_step, None, {})  # no loss: this process trained nothing


def _load_for_training(cfg: TrainConfig):

    resolved = resolve_model(cfg.model)
    from_adapter = Path(resolved).is_dir() and is_adapter_dir(resolved)
    model, tokenizer = load_model(
        cfg.model, trust_remote_code=cfg.trust_remote_code, for_training=True, allow_pickle=cfg.allow_pickle
    )
    model_info = {
        "name": cfg.model,
        "resolved": resolved,
        "revision": hub_revision(resolved),
        "from_adapter": from_adapter,
        "base_model": getattr(model, "name_or_path", None),
    }
    upstream = Path(resolved, RECORD_IN_OUTPUT)
    if upstream.is_file():  # sequential training: remember what the starting checkpoint was trained on
        try:
            previous = json.loads(upstream.read_text(encoding="utf-8"))
            model_info["previous_run"] = {
                "run_id": previous.get("run_id"),
                "mode": (previous.get("train") or {}).get("mode"),
                "data": ((previous.get("train") or {}).get("data") or {}).get("parts"),
            }
        except (OSError, ValueError):
            pass
    return model, tokenizer, model_info


def _training_data(cfg: TrainConfig):

    return training_dataset(cfg.data, cfg.mode, data_dir=cfg.data_dir, seed=cfg.seed, data_fraction=cfg.data_fraction)


def _training_args(cfg: TrainConfig, output_dir: Path, learning_rate: float) -> dict:
    """Keyword arguments shared by TrainingArguments (pretrain) and SFTConfig (sft)."""
    return dict(
        output_dir=str(output_dir),
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=learning_rate,
        warmup_steps=cfg.warmup_steps,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=None,  # dlm rotates its own checkpoints only (trainers/scrubbing.py OwnedOutput)
        seed=cfg.seed,
        report_to=cfg.report_to,
        disable_tqdm=True,
        activation_checkpointing=cfg.gradient_checkpointing,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
        **runtime.precision(cfg.bf16),
    )


def _quiet_trainer(trainer) -> None:
    """Our progress line replaces the Trainer's printed log dicts."""

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


def _save_final(trainer, tokenizer, output_dir: Path, cfg: TrainConfig, model_info: dict):
    """Final model + tokenizer at the root of output_dir (adapter files for LoRA; merged model on request)."""
    model = trainer.model
    # Trainer set use_cache=False for training; a saved model should generate with its cache again.
    base_config = getattr(model, "config", None)
    if base_config is not None:
        base_config.use_cache = True
    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(output_dir))
    if not cfg.lora:
        return model
    # An adapter trained on a model that was itself base + adapter cannot be re-applied to the base alone, so
    # its merged model is always saved too.
    if cfg.merge_lora or model_info.get("from_adapter"):
        merged = model.merge_and_unload()
        if trainer.is_world_process_zero():
            merged.save_pretrained(str(output_dir / MERGED_SUBDIR))
            tokenizer.save_pretrained(str(output_dir / MERGED_SUBDIR))
        return merged
    return model


def _record(
    cfg,
    run_id,
    output_dir,
    trainer,
    output,
    packing,
    data_info,
    model_info,
    learning_rate,
    trainable_params,
    total_params,
    train_seconds,
    wall_seconds,
    merged: bool,
) -> dict:
    state = trainer.state
    losses = [[entry["step"], entry["loss"]] for entry in state.log_history if "loss" in entry]
    positions = trainer.positions_processed
    lora = cfg.lora
    return {
        "kind": "train",
        "run_id": run_id,
        "status": "ok",
        "command": list(sys.argv),
        "model": {
            "name": cfg.model,
            "resolved": model_info["resolved"],
            "revision": model_info["revision"],
            "peft": str(output_dir) if lora else None,
            "base_model": model_info["base_model"],
            "previous_run": model_info.get("previous_run"),
        },
        "approach": None,  # set by the pipeline (it knows whether this is one step of a sequence)
        "domain": None,
        "train": {
            "mode": cfg.mode,
            "lora": lora,
            "config": {**cfg.to_dict(), "learning_rate": learning_rate},
            "data": _data_block(data_info),
            "tokens_seen": state.num_input_tokens_seen,
            "packing_efficiency": trainer.tokens_this_session / positions if positions else None,
            **packing,
            "global_step": state.global_step,
            "wall_time_s": wall_seconds,
            "train_time_s": train_seconds,
            "tokens_per_s": trainer.tokens_this_session / train_seconds if train_seconds > 0 else None,
            "peak_memory_mb": runtime.peak_memory_mb(),
            "trainable_params": trainable_params,
            "total_params": total_params,
            "loss_curve": losses,
            "final_loss": losses[-1][1] if losses else None,
            "mean_loss": getattr(output, "training_loss", None),
            "output_dir": str(output_dir),
            "merged_dir": str(output_dir / MERGED_SUBDIR) if merged else None,
            "world_size": runtime.world_size(),
            "device": runtime.device_name(),
        },
    }


def _data_block(info: dict | None) -> dict:
    """What the data layer reported about the mixture actually drawn (rates asked vs proportions realised)."""
    info = dict(info or {})
    parts = info.get("parts")
    if parts is not None:
        info["parts"] = [p.label() if hasattr(p, "label") else p for p in parts]
    return info


def _write_lineage(cfg: TrainConfig, run_id: str, output_dir: Path, model_info: dict) -> None:
    """dlm_lineage.json beside the weights (and beside a merged copy): what every later evaluation of this
    directory reads to know what it scores (dlm_data/lineage.py)."""

    lineage = new_lineage(
        cfg.model,
        run_id,
        cfg.mode,
        [p.label() for p in cfg.data.parts],
        cfg.max_steps,
        cfg.lora,
        cfg.seed,
        resolved_start=model_info.get("resolved"),
    )
    write_lineage(output_dir, lineage)
    if (output_dir / MERGED_SUBDIR).is_dir():
        write_lineage(output_dir / MERGED_SUBDIR, replace(lineage, adapter=False, merged=True))


def _write_json(path: Path, record: dict) -> None:
    """The training record's copy beside the weights: checked against the record schema, scrubbed, atomic."""
    atomic_write(path, json.dumps(scrub(to_record(record).to_dict()), indent=2))
