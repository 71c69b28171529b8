"""Peak training memory of a run, estimated before it starts from the model's config alone.

The model is built on the meta device from its config (a local directory, the Hugging Face cache, or the study
models' configs shipped here), so no weights are read or downloaded. The estimate is what the allocator holds at
the peak of a steady-state step (torch.cuda.max_memory_allocated on a GPU), in parts:

- weights: every parameter in float32 (dlm trains float32 master weights; mixed precision is autocast);
- Adam: two float32 states per trainable parameter (AdamW, the Trainer's default);
- gradients: one float32 per trainable parameter;
- activations: what autograd keeps for the backward, counted tensor by tensor for each family's layer as
  transformers 5 computes it (GPT-2; Qwen2 and the Llama-shaped families), at the run's batch x length, in the
  precision the device gets (fp16 autocast on T4/V100, bf16 on newer GPUs, float32 on CPU);
- scores: attention score matrices, kept only by kernels that keep them (eager attention; sdpa on CPU with
  attention dropout, which falls back to the math kernel); sdpa on GPUs keeps none;
- logits: pretraining's loss keeps the float32 log-softmax of every position, its gradient and the logits'
  gradient (12 bytes per position and vocabulary entry); SFT on a GPU goes through TRL's fused LM head (tiles of
  4,096 x 32,768 and a float32 gradient of the head), on CPU dlm keeps logits at the supervised positions only
  (`logit_positions`, all positions when unknown: an upper bound);
- casts (GPU autocast): the 16-bit copy of every matrix weight, kept from the forward to the backward.

The peak is weights + Adam + the larger of (activations + scores + logits + casts) at the start of the backward
and (gradients) at its end: gradients are freed after every step (set_to_none), so they fill in while the
activations are released. With activation checkpointing each layer keeps only its input, and the layer being
recomputed (with the gradients so far: counted whole, an upper bound) is a third candidate for the peak. SFT rows
are counted at max_length (packed rows are at most that long: an upper bound, ~10% on tweets). Checked against
measured peaks of the shrunk models on CPU (tests/test_memory.py, bench/memory_estimate.py). A device fits the run
when the peak plus the CUDA context (CUDA_CONTEXT_GIB) and allocator headroom (HEADROOM) is at most its memory;
TIGHT when it fits only without the headroom.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.pytorch_utils import Conv1D

from dlm.errors import UserError
from dlm.trainers.estimate import device_key
from dlm.trainers.families import gpt2_config, qwen2_config
from dlm.trainers.models import (
    ALIASES,
    adapter_base,
    apply_lora,
    count_params,
    is_adapter_dir,
    resolve_model,
)

GIB = 2**30
# memory of each GPU in the time-estimate table (trainers/estimate.py), GB as sold; the common variant where
# there are several (V100 16 GB, A100 40 GB)
GPU_MEMORY_GB = {"t4": 16, "v100": 16, "l4": 24, "a10": 24, "a100": 40, "h100": 80, "h200": 141}
FP16_GPUS = ("t4", "v100")  # no bf16: dlm's runtime picks fp16 autocast; the others get bf16 (2 bytes either way)
CUDA_CONTEXT_GIB = 0.5  # CUDA context, cuBLAS workspaces: outside what the allocator reports
HEADROOM = 0.10  # allocator fragmentation on top of the live tensors
FUSED_TOKEN_TILE, FUSED_VOCAB_TILE = 4096, 32768  # TRL's fused LM head (trl/kernels/chunked_logprob.py)
# The study's models, for estimates without a download: the configs of their hub repos (test_memory.py checks
# their parameter counts against trainers/estimate.py's table)
STUDY_CONFIGS = {
    "gpt2": lambda: gpt2_config(),
    "gpt2-medium": lambda: gpt2_config(n_embd=1024, n_layer=24, n_head=16),
    "qwen2-0.5b": lambda: qwen2_config(),
}
# the same configs by hub id (Qwen2-0.5B-Instruct has Qwen2-0.5B's shapes; only its special-token ids differ)
HUB_CONFIGS = {
    **{ALIASES[alias]: build for alias, build in STUDY_CONFIGS.items()},
    "Qwen/Qwen2-0.5B-Instruct": qwen2_config,
}


@dataclass
class Shape:
    """What the activation count needs of a model: sizes from its config, parameter counts from the meta model."""

    model_type: str  # config.model_type
    family: str  # "gpt2", "llama" (Qwen2, Llama, Mistral, Qwen3: RMSNorm, rotary, SwiGLU, GQA), or "other"
    layers: int
    hidden: int
    inner: int  # MLP width
    heads: int
    kv_heads: int
    vocab: int
    dropout: float  # attention dropout (scores kept on CPU when > 0)
    hidden_dropout: float  # GPT-2's residual and embedding dropout (masks kept)
    eager: bool
    total_params: int = 0
    trainable_params: int = 0
    matrix_params: int = 0  # weights of matrix products (linear, Conv1D, the LM head): cast under autocast
    lora_inputs: int = 0  # summed input widths of the LoRA-adapted layers, per layer
    lora_distinct_inputs: int = 0  # the same, each distinct input once (q/k/v share theirs)
    lora_dropout: float = 0.0


@dataclass
class MemoryEstimate:
    parts: dict[str, int]  # bytes: weights, adam, gradients, activations, scores, logits, casts
    peak: int
    device: str
    capacity: int | None  # bytes the device has; None when unknown
    precision: str
    notes: list[str] = field(default_factory=list)

    @property
    def needed(self) -> int:
        """The peak plus the CUDA context and allocator headroom (on a GPU)."""
        if self.device == "cpu":
            return self.peak
        return int(self.peak * (1 + HEADROOM) + CUDA_CONTEXT_GIB * GIB)

    @property
    def fits(self) -> bool | None:
        return None if self.capacity is None else self.needed <= self.capacity

    @property
    def verdict(self) -> str:
        """fits; TIGHT (fits only without the allocator headroom: may run out); DOES NOT FIT; or unknown."""
        if self.capacity is None:
            return "unknown"
        if self.fits:
            return "fits"
        context = 0 if self.device == "cpu" else CUDA_CONTEXT_GIB * GIB
        return "TIGHT" if self.peak + context <= self.capacity else "DOES NOT FIT"

    def summary(self) -> str:
        parts = ", ".join(f"{name} {gib(value)}" for name, value in self.parts.items() if value >= GIB / 200)
        where = device_label(self.device, self.capacity)
        extra = f" (+context and headroom: {gib(self.needed)})" if self.device != "cpu" else ""
        return f"peak ~{gib(self.peak)} GiB{extra} [{parts}; {self.precision}]; {self.verdict} {where}"

    def to_dict(self) -> dict:
        return {
            "peak_bytes": self.peak,
            "needed_bytes": self.needed,
            "parts": dict(self.parts),
            "device": self.device,
            "capacity_bytes": self.capacity,
            "fits": self.fits,
            "verdict": self.verdict,
            "precision": self.precision,
            "notes": list(self.notes),
        }


def gib(value: float) -> str:
    return f"{value / GIB:.2f}" if value < 10 * GIB else f"{value / GIB:.1f}"


def device_label(device: str, capacity: int | None) -> str:
    if device == "cpu":
        return f"CPU ({gib(capacity)} GiB RAM)" if capacity else "CPU"
    return f"{device.upper()} ({GPU_MEMORY_GB[device]} GB)"


def device_capacity(device: str) -> int | None:
    if device == "cpu":
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None
    return GPU_MEMORY_GB[device] * 10**9


def known_device(name: str, flag: str = "--device") -> str:
    devices = (*GPU_MEMORY_GB, "cpu")
    if name.lower() not in devices:
        raise UserError(f"unknown {flag} '{name}'; use one of {', '.join(devices)}")
    return name.lower()


def local_device() -> str:
    """The GPU at hand when it is in the table, else cpu (an unknown GPU is named by --device)."""
    if torch.cuda.is_available():
        return device_key(torch.cuda.get_device_name(0)) or "cpu"
    return "cpu"


# --- the model's config -------------------------------------------------------------------------------------------
def model_config(name: str, trust_remote_code: bool = False):
    """The config of `name` without its weights: a local checkpoint's (an adapter's base for an adapter dir), the
    Hugging Face cache's for a hub id (no download), or the shipped config of a study model; None if none is at
    hand."""
    try:
        resolved = resolve_model(name)
    except UserError:
        return None
    path = Path(resolved)
    if path.is_dir() and is_adapter_dir(path):
        return model_config(adapter_base(path), trust_remote_code)
    if path.is_dir():
        if not (path / "config.json").is_file():
            return None
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    cached = _cached(resolved, trust_remote_code)
    if cached is None and resolved in HUB_CONFIGS:
        return HUB_CONFIGS[resolved]()
    return cached


def _cached(hub_id: str, trust_remote_code: bool = False):
    try:
        return AutoConfig.from_pretrained(hub_id, local_files_only=True, trust_remote_code=trust_remote_code)
    except (OSError, ValueError):
        return None


def shape_of(config, lora: dict | None = None) -> Shape:
    """Sizes and parameter counts of the model `config` describes, built on the meta device (no memory, no
    weights), with LoRA adapters applied as a run would apply them (`lora`: r, alpha, dropout, targets)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    model_type = getattr(text, "model_type", "")
    hidden, heads, layers = text.hidden_size, text.num_attention_heads, text.num_hidden_layers  # GPT-2 maps them
    if model_type == "gpt2":
        family = "gpt2"
        inner = getattr(text, "n_inner", None) or 4 * hidden
        dropout, hidden_dropout = float(text.attn_pdrop or 0), float(max(text.resid_pdrop or 0, text.embd_pdrop or 0))
    else:
        family = "llama" if hasattr(text, "intermediate_size") and hasattr(text, "rms_norm_eps") else "other"
        inner = getattr(text, "intermediate_size", None) or 4 * hidden
        dropout, hidden_dropout = float(getattr(text, "attention_dropout", 0) or 0), 0.0
    shape = Shape(
        model_type=model_type,
        family=family,
        layers=layers,
        hidden=hidden,
        inner=inner,
        heads=heads,
        kv_heads=getattr(text, "num_key_value_heads", None) or heads,
        vocab=text.vocab_size,
        dropout=dropout,
        hidden_dropout=hidden_dropout,
        eager=getattr(config, "_attn_implementation", None) == "eager",
    )
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    shape.matrix_params = _matrix_params(model)
    if lora:
        model = apply_lora(model, lora["r"], lora["alpha"], lora["dropout"], lora.get("targets"))
        shape.lora_inputs, shape.lora_distinct_inputs = _lora_inputs(model, layers)
        shape.lora_dropout = lora["dropout"]
    shape.trainable_params, shape.total_params = count_params(model)
    return shape


def _matrix_params(model) -> int:
    seen, total = set(), 0
    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, Conv1D)) and id(module.weight) not in seen:
            seen.add(id(module.weight))
            total += module.weight.numel()
    return total


def _lora_inputs(model, layers: int) -> tuple[int, int]:
    """(summed input widths of the adapted layers, distinct inputs), per transformer layer."""
    widths = []
    for name, module in model.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            widths.append((name.rsplit(".", 1)[-1], module.lora_A["default"].in_features))
    total = sum(width for _, width in widths)
    shared = {"q_proj": "qkv", "k_proj": "qkv", "v_proj": "qkv", "gate_proj": "gate_up", "up_proj": "gate_up"}
    distinct = {}
    for index, (name, width) in enumerate(widths):
        distinct[shared.get(name, f"{name}-{index}")] = width
    return total // max(layers, 1), sum(distinct.values()) // max(layers, 1)


# --- the count ------------------------------------------------------------------------------------------------------
def activation_bytes(
    shape: Shape, tokens: int, length: int, device: str, checkpointing: bool = False
) -> tuple[int, int]:
    """(bytes autograd keeps for the backward of one micro-batch of `tokens` = batch x length, scores excluded;
    bytes of the one layer recomputed at a time with activation checkpointing, else 0).

    Per token and layer, as transformers 5 computes each family (counted with saved-tensor hooks on the shrunk
    models): norms keep float32 input and statistics; each matrix product keeps its input (under autocast a
    16-bit copy made per product, so q/k/v and gate/up keep one each); attention keeps q, k, v, its output and
    the log-sum-exp (the math kernel keeps the scores instead: `score_bytes`); sdpa with the block-diagonal mask
    of packed rows keeps that mask and repeats the key-value heads; dropout keeps its mask."""
    h, i, heads, layers = shape.hidden, shape.inner, shape.heads, shape.layers
    cpu = device == "cpu"
    act = 4 if cpu else 2  # matmul inputs and outputs (16-bit autocast on GPUs)
    mask = act if cpu else 1  # a dropout mask: a float tensor on CPU, booleans on CUDA
    math_kernel = shape.eager or (cpu and shape.dropout > 0)  # keeps the scores, not the lse nor the packed mask
    attention_kernel = 0 if math_kernel else 4 * heads + length * (4 if cpu else 2)  # lse, packed rows' mask
    if shape.family == "gpt2":
        norms = 2 * (4 * h + 8)
        attention = h * act + 3 * h * act + h * act + attention_kernel  # c_attn in, q/k/v, output (= c_proj in)
        mlp = h * act + 2 * i * act  # c_fc in, gelu in, c_proj in
        dropout_masks = 2 * h * mask if shape.hidden_dropout > 0 else 0
        per_layer = norms + attention + mlp + dropout_masks
        model_level = (h * mask if shape.hidden_dropout > 0 else 0) + (4 * h + 8) + h * act + 16
    else:  # RMSNorm, rotary, SwiGLU; packed rows carry a mask, so sdpa repeats the key-value heads
        casts = 1 if cpu else 3  # q/k/v_proj (and gate/up_proj: 1 or 2) keep one input each under autocast
        norms = 2 * (8 * h + 4)
        attention = casts * h * act + 3 * h * act + h * act + attention_kernel  # inputs, q/k/v, output
        mlp = min(casts, 2) * h * act + 4 * i * act  # gate/up in, gate out, act out, up out, down in
        per_layer = norms + attention + mlp
        model_level = (8 * h + 4) + h * act + 2 * (h // heads) * 4 + 16  # final norm, LM head in, cos/sin, ids
    if shape.lora_dropout > 0:  # each adapted layer keeps its dropped input and the mask
        per_layer += shape.lora_inputs * (act + mask) - shape.lora_distinct_inputs * act
    if checkpointing:  # each layer keeps its float32 input; one layer at a time is recomputed in the backward
        return tokens * (layers * 4 * h + model_level), tokens * per_layer
    return tokens * (layers * per_layer + model_level), 0


def score_bytes(shape: Shape, batch: int, length: int, device: str) -> int:
    """Attention score matrices kept by the math/eager kernels: softmax output, dropout mask, dropped scores."""
    cpu = device == "cpu"
    if not (shape.eager or (cpu and shape.dropout > 0)):
        return 0
    act = 4 if cpu else 2
    per_entry = act + ((act if cpu else 1) + act if shape.dropout > 0 else 0)
    return shape.layers * batch * shape.heads * length * length * per_entry


def logit_bytes(shape: Shape, tokens: int, mode: str, device: str, logit_positions: int | None) -> int:
    if mode == "sft" and device != "cpu":  # TRL's fused LM head: one tile, and the head's gradient in float32
        return min(tokens, FUSED_TOKEN_TILE) * min(shape.vocab, FUSED_VOCAB_TILE) * 2 + shape.vocab * shape.hidden * 4
    positions = tokens if logit_positions is None else logit_positions
    return 12 * positions * shape.vocab  # float32 log-softmax, its gradient, the logits' gradient


def estimate(
    shape: Shape,
    mode: str,
    batch: int,
    length: int,
    device: str = "cpu",
    checkpointing: bool = False,
    logit_positions: int | None = None,
    bf16: bool = False,
) -> MemoryEstimate:
    """Peak bytes of one steady-state training step of `shape` (module docstring). `logit_positions`: positions
    whose logits SFT on CPU computes per micro-batch (default: every position, an upper bound)."""
    known_device(device)
    tokens = batch * length
    activations, recomputed = activation_bytes(shape, tokens, length, device, checkpointing)
    scores = score_bytes(shape, batch, length, device)
    parts = {
        "weights": 4 * shape.total_params,
        "adam": 8 * shape.trainable_params,
        "gradients": 4 * shape.trainable_params,
        "activations": activations,
        "scores": 0 if checkpointing else scores,
        "logits": logit_bytes(shape, tokens, mode, device, logit_positions),
        "casts": 0 if device == "cpu" else 2 * shape.matrix_params,
    }
    backward_start = parts["activations"] + parts["scores"] + parts["logits"] + parts["casts"]
    # with checkpointing a layer is recomputed after the logits' gradients are gone, while gradients fill in
    recompute = activations + recomputed + scores // shape.layers + parts["gradients"] if checkpointing else 0
    peak = parts["weights"] + parts["adam"] + max(backward_start, recompute, parts["gradients"])
    notes = []
    if shape.family == "other":
        notes.append("activations counted as for a Llama-shaped layer (family not modelled)")
    if mode == "sft" and device == "cpu" and logit_positions is None:
        notes.append("SFT logits at every position (an upper bound: dlm keeps the supervised ones only)")
    precision = "float32" if device == "cpu" else ("fp16" if device in FP16_GPUS else "bf16")
    if device == "cpu" and bf16:
        notes.append("counted in float32: --bf16 autocast on CPU is not modelled (an upper bound)")
    return MemoryEstimate(parts, peak, device, device_capacity(device), precision, notes)


def run_shape(cfg, model: str | None = None) -> Shape | None:
    """The shape a TrainConfig trains: its model's config (`model`: the base to read instead, for a plan run that
    starts from another run's checkpoint) with the run's LoRA adapters. None when the config is not at hand (a hub
    id not in the cache, offline)."""
    config = model_config(model or cfg.model, cfg.trust_remote_code)
    if config is None:
        return None
    spec = cfg.adapter
    lora = {"r": spec.r, "alpha": spec.alpha, "dropout": spec.dropout, "targets": spec.targets} if spec else None
    return shape_of(config, lora)


def estimate_run(cfg, shape: Shape, device: str) -> MemoryEstimate:
    """The estimate for a TrainConfig's steps (batch x max_length, checkpointing) on `device`."""
    return estimate(
        shape,
        cfg.mode,
        cfg.batch_size,
        cfg.max_length,
        device,
        checkpointing=cfg.gradient_checkpointing,
        bf16=cfg.bf16,
    )
