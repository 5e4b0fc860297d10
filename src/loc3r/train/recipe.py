"""The loc3r training recipe: one short, linear loop on 🤗 Accelerate (nanoGPT / torchtune style).

Why Accelerate (and not HF ``Trainer``): the loop stays an explicit page of code — where every loss term is
logged, where a non-finite step is skipped, what a checkpoint holds and how resume skips data are all visible
here — while Accelerate supplies what must not be home-made: device placement, DDP / FSDP / DeepSpeed
ZeRO-2/3 wrapping chosen by the launcher (``torchrun``, ``accelerate launch --config_file
configs/accelerate/*.yaml``), mixed precision, gradient accumulation (``accumulate`` / ``no_sync``),
distributed reductions and sharded ``save_state`` / ``load_state``. ``Trainer`` would hide the custom parts
(per-term losses, exact data-position resume, non-finite skipping) behind callbacks and overrides.

What one run does (:func:`train` reads top to bottom as these named steps)::

    _start_run:       accelerator, output dir + log, resume decision, config.yaml, seed
    _build:           datasets -> tokenizer + model -> LoRA / freezing -> AdamW + cosine -> prepare
    _restore:         [resume: load checkpoint] -> trainer state, metric logs cut back, trackers
    _log_run_summary: config, engine, attention, model, data
    loop:
      _train_step:    grad_accum micro-batches (forward, backward) -> reduce stats -> skip if non-finite
                      else step -> scheduler
      _after_step:    log (TensorBoard + metrics.jsonl + tqdm) -> non-finite stop -> validation loss per
                      term (:func:`validation_loss`) -> checkpoint
    _finish:          parameter sync check across processes -> final model directory

Outputs under ``output_dir``: ``config.yaml`` (resolved recipe), ``train.log``, ``metrics.jsonl`` (one JSON
object per logged step / evaluation — the loss curve; truncated to the checkpoint on resume),
TensorBoard events in ``tb/``, ``checkpoints/step-XXXXXXXX/`` (see :mod:`loc3r.train.checkpointing`),
``sync_check.json`` and ``final/`` (``Loc3rForConditionalGeneration.from_pretrained``-loadable, tokenizer
and processor settings included; LoRA is merged into the weights).

Exact resume: a checkpoint holds model, optimizer, scheduler, the RNG states of every process and the data
position (epoch + micro-batch); the data order is a pure function of ``(seed, epoch)``
(:class:`~loc3r.data.mixture.MixtureSampler`), DataLoaders use their own seeded generators (so creating one
does not consume the global torch RNG), and evaluation does not touch the global RNGs. A run killed with
SIGKILL and resumed therefore logs the same losses, bit for bit on CPU, as a run that was never interrupted.

Non-finite losses: if any micro-batch of a step on any process has a non-finite loss, or the gradient norm is
non-finite, all processes skip the optimizer update together (gradients are zeroed), the step is counted
(``train/nonfinite_steps``) and logged; the data are consumed and the schedule advances. After more than
``train.max_nonfinite_steps`` such steps, a checkpoint is written and :class:`NonFiniteLossError` stops the
run. (Under DeepSpeed the optimizer step runs inside DeepSpeed's engine during ``backward``, so the skip is
DeepSpeed's own overflow handling; the counting and the stop still apply.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from loc3r.core.io import write_json, write_text
from loc3r.data.mixture import EvalShardSampler, MixtureDataset, MixtureSampler, ShardedBatchSampler
from loc3r.data.video import FrameLog
from loc3r.train import builders
from loc3r.train.checkpointing import (
    CheckpointError,
    TrainerState,
    cleanup_partial,
    latest_checkpoint,
    load_checkpoint,
    newest_good_checkpoint,
    read_checkpoint_config,
    save_checkpoint,
)
from loc3r.train.config import RecipeConfig, config_to_dict, diff_configs, dump_config

logger = logging.getLogger("loc3r.train")


class NonFiniteLossError(RuntimeError):
    """More than ``train.max_nonfinite_steps`` steps had a non-finite loss or gradient."""


@dataclass
class TrainResult:
    """What :func:`train` returns (on every process)."""

    step: int
    nonfinite_steps: int
    output_dir: Path
    final_dir: Path | None
    last_train: dict[str, float] = field(default_factory=dict)
    last_val: dict[str, float] = field(default_factory=dict)
    in_sync: bool | None = None


# ---------------------------------------------------------------------------------------------- helpers


def _setup_logging(accelerator: Any, output_dir: Path) -> None:
    """INFO to stderr and ``train.log`` on the main process, warnings only elsewhere."""
    logger.setLevel(logging.INFO if accelerator.is_main_process else logging.WARNING)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    fmt = logging.Formatter(f"%(asctime)s [rank {accelerator.process_index}] %(levelname)s %(message)s")
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(fmt)
    logger.addHandler(stream)
    if accelerator.is_main_process:
        file = logging.FileHandler(output_dir / "train.log")
        file.setFormatter(fmt)
        logger.addHandler(file)


def _flat_hparams(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Config as flat TensorBoard hparams (scalars and strings only)."""
    out: dict[str, Any] = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.update(_flat_hparams(value, f"{prefix}.{key}" if prefix else key))
    elif isinstance(tree, bool | int | float | str):
        out[prefix] = tree
    else:
        out[prefix] = json.dumps(tree)
    return out


def _fingerprint(cfg_dict: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(cfg_dict, sort_keys=True).encode()).hexdigest()[:16]


def _truncate_metrics(path: Path, last_step: int) -> None:
    """Drop metric lines logged after ``last_step`` (they were logged by the killed run after its last
    checkpoint and are about to be recomputed)."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= last_step]
    write_text(path, "".join(line + "\n" for line in kept))


def _append_jsonl(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()


def parameter_digest(model: torch.nn.Module) -> str:
    """SHA-256 over every parameter's bytes in name order: equal digests = bitwise identical parameters."""
    h = hashlib.sha256()
    for name, param in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        h.update(name.encode())
        h.update(param.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _check_sync(accelerator: Any, model: torch.nn.Module, step: int, output_dir: Path) -> bool | None:
    """All processes must hold identical parameters under DDP; gathers per-rank digests and compares.
    Skipped (None) when parameters are sharded (FSDP / DeepSpeed), where they differ by design."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        return None
    digest = parameter_digest(accelerator.unwrap_model(model))
    as_ints = torch.tensor([int(digest[i : i + 8], 16) for i in range(0, 64, 8)], dtype=torch.int64)
    gathered = accelerator.gather(as_ints.to(accelerator.device)).view(accelerator.num_processes, 8).cpu()
    digests = ["".join(f"{int(v):08x}" for v in row) for row in gathered]
    in_sync = len(set(digests)) == 1
    if accelerator.is_main_process:
        write_json(
            output_dir / "sync_check.json",
            {"step": step, "num_processes": accelerator.num_processes, "digests": digests, "in_sync": in_sync},
            indent=2,
        )
    if not in_sync:
        logger.error("parameters DIVERGED across processes at step %d: %s", step, digests)
    return in_sync


def _micro_batches(
    dataset: MixtureDataset,
    sampler: MixtureSampler,
    collate: Any,
    cfg: RecipeConfig,
    accelerator: Any,
    epoch: int,
    start_batch: int,
    usable: int,
) -> Iterator[tuple[int, int, Any]]:
    """Endless ``(epoch, batch_in_epoch, batch)`` from a data position; each epoch yields ``usable``
    micro-batches (a whole number of optimizer steps)."""
    while True:
        batch_sampler = ShardedBatchSampler(
            sampler,
            cfg.train.batch_size,
            num_replicas=accelerator.num_processes,
            rank=accelerator.process_index,
            epoch=epoch,
            start_batch=start_batch,
        )
        loader = DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            collate_fn=collate,
            num_workers=cfg.data.num_workers,
            # own generator: building a loader must not consume the global torch RNG (exact resume)
            generator=torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch),
            persistent_workers=False,
        )
        b = start_batch
        for batch in loader:
            if b >= usable:
                break
            yield epoch, b, batch
            b += 1
        epoch, start_batch = epoch + 1, 0


def _term_weights(batch: Any, keys: list[str], n: int) -> torch.Tensor:
    """How many targets each loss term of a batch averaged over (so the validation mean is per target, not
    per batch): answer tokens for ``loss_ce``, valid vision tokens for ``loss_bev``, samples with a known
    pose for the situation terms, samples for the total."""
    counts = {
        "loss_ce": batch["labels"].ne(-100).sum() if "labels" in batch else None,
        "loss_bev": batch["layout_valid"].sum() if "layout_valid" in batch else None,
        "loss_pos": batch["situation_valid"].sum() if "situation_valid" in batch else None,
    }
    counts["loss_ori"] = counts["loss_sit"] = counts["loss_pos"]
    out = [float(counts[k]) if counts.get(k) is not None else float(n) for k in keys]
    return torch.tensor(out, dtype=torch.float64)


@torch.no_grad()
def validation_loss(
    model: torch.nn.Module, dataset: Dataset, collate: Any, cfg: RecipeConfig, accelerator: Any
) -> dict[str, float]:
    """Validation loss per term (``val/loss``, ``val/loss_ce``, ...) over all processes.

    Each term is averaged over its own targets: ``Σ_batches term_b · count_b / Σ_batches count_b`` with
    ``count_b`` the answer tokens (CE), valid vision tokens (BEV) or posed samples (situation) of batch b.
    A term with no target anywhere (e.g. a split without situations) is not reported. Every process runs
    the same number of forward passes; padding batches are discarded.
    """
    sampler = EvalShardSampler(len(dataset), cfg.train.batch_size, accelerator.num_processes, accelerator.process_index)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=cfg.data.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    was_training = model.training
    model.eval()
    keys: list[str] | None = None
    sums: torch.Tensor | None = None
    counts: torch.Tensor | None = None
    max_batches = min(cfg.train.eval_max_batches or len(sampler), len(sampler))
    for i, batch in enumerate(loader):
        if i >= max_batches:
            break
        n = int(batch["input_ids"].shape[0])
        out = model(**batch.to(accelerator.device))
        if keys is None:
            keys = sorted(out.losses)
            sums = torch.zeros(len(keys), dtype=torch.float64)
            counts = torch.zeros(len(keys), dtype=torch.float64)
        if i < sampler.num_real_batches:
            weights = _term_weights(batch, keys, n)
            values = torch.stack([out.losses[k].detach().double().cpu() for k in keys])
            sums += torch.where(weights > 0, values * weights, 0.0)
            counts += weights
    if was_training:
        model.train()
    if keys is None or sums is None or counts is None:
        return {}
    totals = accelerator.reduce(torch.cat([sums, counts]).to(accelerator.device), reduction="sum").cpu()
    sums, counts = totals[: len(keys)], totals[len(keys) :]
    return {f"val/{k}": float(sums[j] / counts[j]) for j, k in enumerate(keys) if counts[j] > 0}


def _save_final(accelerator: Any, model: torch.nn.Module, output_dir: Path) -> Path | None:
    """Write ``final/`` atomically: full safetensors weights + config + tokenizer + processor settings.
    LoRA adapters are merged into the base weights so the directory loads with ``from_pretrained``."""
    from accelerate.utils import DistributedType

    final, tmp = output_dir / "final", output_dir / ".tmp-final"
    unwrapped = accelerator.unwrap_model(model)
    is_peft = hasattr(unwrapped, "merge_and_unload")
    if is_peft and accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED):
        logger.warning("LoRA under FSDP/DeepSpeed: final/ not merged; use the last checkpoint's weights")
        return None
    state_dict = None if is_peft else accelerator.get_state_dict(model)  # collective for sharded engines
    if accelerator.is_main_process:
        if tmp.exists():
            shutil.rmtree(tmp)
        if is_peft:
            merged = unwrapped.merge_and_unload()
            merged.save_pretrained(tmp, safe_serialization=True)
        else:
            unwrapped.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    accelerator.wait_for_everyone()
    return final


# ---------------------------------------------------------------------------------------------- the recipe


@dataclass
class _Run:
    """What the steps of one run share: the config, the engine, the data, the model and the trainer state."""

    cfg: RecipeConfig
    accelerator: Any
    output_dir: Path
    cfg_dict: dict[str, Any]
    ckpt: Path | None  # the checkpoint to resume from
    train_set: Any = None
    val_set: Any = None
    sampler: Any = None
    usable: int = 0  # micro-batches per epoch that make whole optimizer steps
    tokenizer: Any = None
    model: Any = None
    optimizer: Any = None
    scheduler: Any = None
    collate: Any = None
    params: dict[str, int] = field(default_factory=dict)
    state: Any = None  # TrainerState
    trainable: list[torch.nn.Parameter] = field(default_factory=list)  # what the gradient norm is clipped over
    rank_log: Path | None = None
    #: bad frames the loaders skipped (file, record, field), counted here because samples may come from workers
    frame_log: Any = None
    frame_dir: Path | None = None

    @property
    def ckpt_root(self) -> Path:
        return self.output_dir / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.output_dir / "metrics.jsonl"

    @property
    def global_batch(self) -> int:
        return self.cfg.train.batch_size * self.cfg.train.grad_accum * self.accelerator.num_processes

    def log_metrics(self, metrics: dict[str, float]) -> None:
        """To the trackers (TensorBoard) and, on the main process, a line of ``metrics.jsonl``."""
        self.accelerator.log(metrics, step=self.state.step)
        if self.accelerator.is_main_process:
            _append_jsonl(self.metrics_path, {"step": self.state.step, **metrics})

    def save_checkpoint(self) -> Path | None:
        """A checkpoint of the current state (with the run's tokenizer), keeping the last ``train.keep_last``."""

        def save_tokenizer(directory: Path) -> None:
            self.tokenizer.save_pretrained(str(directory / "tokenizer"))

        cfg = self.cfg
        return save_checkpoint(
            self.accelerator, self.ckpt_root, self.state, dump_config(cfg), cfg.train.keep_last, save_tokenizer
        )


@dataclass
class _Logs:
    """What the loop carries between steps for logging: the last logged train / validation numbers, the loss
    term names, and the throughput window (training time only: validation / checkpoint time excluded)."""

    last_train: dict[str, float] = field(default_factory=dict)
    last_val: dict[str, float] = field(default_factory=dict)
    keys: list[str] | None = None
    window_time: float = 0.0
    window_samples: int = 0


@dataclass
class _Step:
    """The outcome of one optimizer step (see :func:`_train_step`)."""

    stats: torch.Tensor  # mean over processes of each loss term, then the non-finite flag
    grad_norm: float
    nonfinite: bool
    lr: float
    local_loss: float
    sample_ids: list[str]


def train(
    cfg: RecipeConfig, resume: bool = False, strict: bool = False, progress_position: int | None = None
) -> TrainResult:
    """Run the recipe ``cfg`` (from scratch, or from the newest checkpoint with ``resume``); ``strict``: a skipped
    bad frame is an error instead of a logged, counted skip; ``progress_position``: the terminal line of the progress
    bar (runs side by side in several processes give each its own line)."""
    from tqdm.auto import tqdm

    run = _start_run(cfg, resume)
    run.frame_log = FrameLog("loc3r train", strict=strict)
    _build(run)
    _restore(run)
    _log_run_summary(run)
    state = run.state
    data = _micro_batches(
        run.train_set, run.sampler, run.collate, cfg, run.accelerator, state.epoch, state.batch_in_epoch, run.usable
    )
    show = run.accelerator.is_main_process and cfg.train.progress_bar
    progress = tqdm(
        total=cfg.train.max_steps,
        initial=state.step,
        desc=f"train {Path(cfg.output_dir).name}",
        disable=not show,
        dynamic_ncols=True,
        position=progress_position,
    )
    logs = _Logs()
    run.model.train()
    while state.step < cfg.train.max_steps:
        step = _train_step(run, data, logs)
        progress.update(1)
        _after_step(run, step, logs, progress)
    progress.close()
    run.frame_log.write(run.frame_dir)
    (logger.warning if run.frame_log.problems else logger.info)("%s", run.frame_log.summary())
    return _finish(run, logs)


def _start_run(cfg: RecipeConfig, resume: bool) -> _Run:
    """The engine, the output directory and its log, the resume decision (a checkpoint of another config is
    refused naming the fields), the resolved ``config.yaml``; then the global seed."""
    from accelerate.utils import set_seed

    output_dir = Path(cfg.output_dir)
    ckpt_root = output_dir / "checkpoints"
    cfg_dict = config_to_dict(cfg)
    accelerator = builders.build_accelerator(cfg)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    _setup_logging(accelerator, output_dir)
    ckpt = latest_checkpoint(ckpt_root)
    if ckpt is not None and not resume:
        raise CheckpointError(
            f"{output_dir} already holds checkpoints (newest {ckpt.name}); pass --resume to continue that run "
            "or choose another output_dir"
        )
    if resume and ckpt is not None:
        # a checkpoint damaged after it was completed (disk full, a copy cut short) is not resumed from: the newest
        # whole one is, and the log says which were passed over and why
        ckpt, damaged = newest_good_checkpoint(ckpt_root)
        for path, why in damaged:
            logger.warning("--resume: %s is damaged (%s); falling back to the previous checkpoint", path, why)
        if ckpt is None:
            raise CheckpointError(
                f"--resume: every checkpoint in {ckpt_root} is damaged: "
                + "; ".join(f"{p.name}: {why}" for p, why in damaged)
            )
        if damaged:
            logger.warning("--resume: resuming from %s", ckpt)
    if resume and ckpt is None:
        logger.warning("--resume: no complete checkpoint in %s, starting from scratch", ckpt_root)
    if ckpt is not None:
        diffs = diff_configs(read_checkpoint_config(ckpt), cfg_dict)
        if diffs:
            raise CheckpointError(
                f"{ckpt} was written with a different config; these fields differ (only "
                "train.max_steps, logging/eval/checkpoint cadence, output_dir and validation data may change "
                "on resume):\n  " + "\n  ".join(diffs)
            )
    if accelerator.is_main_process:
        cleanup_partial(ckpt_root)
        write_text(output_dir / "config.yaml", dump_config(cfg))
    set_seed(cfg.seed)
    return _Run(cfg=cfg, accelerator=accelerator, output_dir=output_dir, cfg_dict=cfg_dict, ckpt=ckpt)


def _build(run: _Run) -> None:
    """Data (mixture + sampler), tokenizer + model (+ LoRA / freezing), the collator (the processor),
    optimizer and schedule, all prepared by the engine. A resumed tiny run reuses its own saved tokenizer."""
    cfg, accelerator = run.cfg, run.accelerator
    run.train_set, run.val_set = builders.build_datasets(cfg)
    run.sampler = MixtureSampler(run.train_set, cfg.data.samples_per_epoch, seed=cfg.seed)
    per_epoch = len(run.sampler) // (cfg.train.batch_size * accelerator.num_processes)
    steps_per_epoch = per_epoch // cfg.train.grad_accum
    if steps_per_epoch == 0:
        raise ValueError(
            f"data: {len(run.sampler)} samples per epoch cannot fill one step of batch_size {cfg.train.batch_size} "
            f"x grad_accum {cfg.train.grad_accum} x {accelerator.num_processes} processes"
        )
    run.usable = steps_per_epoch * cfg.train.grad_accum

    corpus, saved_tokenizer = None, None
    if cfg.model.init == "tiny" and run.ckpt is not None and (run.ckpt / "tokenizer").is_dir():
        from transformers import AutoTokenizer

        saved_tokenizer = AutoTokenizer.from_pretrained(str(run.ckpt / "tokenizer"))  # the run's own, not retrained
    elif cfg.model.init == "tiny":
        corpus = builders.tokenizer_corpus(run.train_set, limit=20000)
    run.tokenizer, model = builders.build_tokenizer_and_model(
        cfg.model, corpus, seed=cfg.seed, tokenizer=saved_tokenizer
    )
    model.num_frames = cfg.data.num_frames  # recorded in final/'s processor config (infer's default)
    run.collate = model.build_processor(
        mode="train",
        num_frames=cfg.data.num_frames,
        max_length=cfg.data.max_length,
        camera_root=None if cfg.data.camera_root is None else str(cfg.data.camera_root),
        camera_dropout_seed=cfg.seed,  # which samples camera-prior dropout (model.loc3r) drops
    )
    model = builders.apply_finetuning(model, cfg.model)
    run.params = builders.trainable_parameter_summary(model)
    optimizer = builders.build_optimizer(model, cfg.optim)
    scheduler = builders.build_scheduler(optimizer, cfg.optim, cfg.train.max_steps)
    run.model, run.optimizer, run.scheduler = accelerator.prepare(model, optimizer, scheduler)
    run.trainable = [p for p in run.model.parameters() if p.requires_grad]


def _restore(run: _Run) -> None:
    """The trainer state: fresh, or restored from the checkpoint (model, optimizer, scheduler, RNGs, data
    position; refused when the training data changed size); then the metric logs are cut back to the
    checkpoint's step and the TensorBoard trackers start."""
    cfg, accelerator, ckpt = run.cfg, run.accelerator, run.ckpt
    data_sizes = [int(n) for n in run.train_set.lengths]
    state = TrainerState(num_processes=accelerator.num_processes)
    if ckpt is not None:
        try:
            state = load_checkpoint(accelerator, ckpt)
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"{ckpt}: cannot restore the training state: {err}") from err
        if state.data_sizes and state.data_sizes != data_sizes:
            raise CheckpointError(
                f"{ckpt}: the training data changed since this checkpoint ({run.train_set.names}: "
                f"{state.data_sizes} samples then, {data_sizes} now); the data order cannot be resumed exactly"
            )
        old_max = read_checkpoint_config(ckpt).get("train", {}).get("max_steps")
        if old_max != cfg.train.max_steps:
            logger.warning(
                "train.max_steps changed from %s to %d: the cosine schedule follows the new length from here on",
                old_max,
                cfg.train.max_steps,
            )
        if accelerator.is_main_process:
            _truncate_metrics(run.metrics_path, state.step)
        logger.info(
            "resumed from %s: step %d, epoch %d, micro-batch %d", ckpt, state.step, state.epoch, state.batch_in_epoch
        )
    state.config_fingerprint, state.data_sizes = _fingerprint(run.cfg_dict), data_sizes
    run.state = state
    accelerator.init_trackers(
        "tb",
        config=_flat_hparams(run.cfg_dict),
        init_kwargs={"tensorboard": {"purge_step": state.step + 1}} if ckpt is not None else {},
    )
    main = accelerator.is_main_process
    run.frame_dir = run.output_dir if main else run.output_dir / "ranks" / f"rank{accelerator.process_index}"
    if cfg.train.log_rank_samples:
        run.rank_log = run.output_dir / "ranks" / f"rank{accelerator.process_index}.jsonl"
        run.rank_log.parent.mkdir(parents=True, exist_ok=True)
        if ckpt is not None:
            _truncate_metrics(run.rank_log, state.step)


def _log_run_summary(run: _Run) -> None:
    """Say what runs: the resolved config, the engine, the attention implementation of every sub-model, the
    model and its trainable parameters, the data mixture and the batch arithmetic."""
    cfg, accelerator, model = run.cfg, run.accelerator, run.model
    logger.info("resolved config:\n%s", dump_config(cfg))
    acc = accelerator
    logger.info(f"engine: accelerate {__import__('accelerate').__version__}, {acc.num_processes} process(es), "
                f"distributed={acc.distributed_type.value}, device={acc.device}, "
                f"mixed_precision={acc.mixed_precision}")  # fmt: skip
    logger.info("attention implementation: %s", builders.attention_implementations(accelerator.unwrap_model(model)))
    m = cfg.model
    logger.info(f"model: {m.init} {m.backbone} ({type(acc.unwrap_model(model)).__name__}), finetune={m.finetune}, "
                f"vision tower frozen={m.freeze_vision_tower}, gradient checkpointing={m.gradient_checkpointing}, "
                f"params total={run.params['total']:d} trainable={run.params['trainable']:d}, "
                f"weights dtype={m.dtype}")  # fmt: skip
    ts, t = run.train_set, cfg.train
    logger.info(f"data: {[f'{n} ({n_})' for n, n_ in zip(ts.names, ts.lengths.tolist(), strict=True)]} with weights "
                f"{ts.weights.tolist()}, {len(run.sampler):d} samples/epoch, {cfg.data.num_frames:d} frames/clip; "
                f"batch {t.batch_size:d} x accum {t.grad_accum:d} x {acc.num_processes:d} proc = "
                f"{run.global_batch:d} samples/step, {run.usable // t.grad_accum:d} steps/epoch, max_steps "
                f"{t.max_steps:d}; val: {'none' if run.val_set is None else f'{len(run.val_set)} samples'}"
                )  # fmt: skip


def _train_step(run: _Run, data: Iterator[tuple[int, int, Any]], logs: _Logs) -> _Step:
    """One optimizer step: ``grad_accum`` micro-batches (forward, backward), the loss terms and a non-finite
    flag averaged over processes, gradient clipping, then the update — or, if any loss or the gradient norm is
    non-finite anywhere, no update (all processes skip together) — and the schedule; the state advances."""
    cfg, accelerator, model, state = run.cfg, run.accelerator, run.model, run.state
    step_start = time.perf_counter()
    acc: torch.Tensor | None = None
    bad = torch.zeros((), dtype=torch.float64, device=accelerator.device)
    sample_ids: list[str] = []
    epoch = batch_index = 0
    for _ in range(cfg.train.grad_accum):
        epoch, batch_index, batch = next(data)
        for m in getattr(batch, "metadata", []):
            run.frame_log.add(m.meta, m.sample_id)
        if run.rank_log is not None and hasattr(batch, "metadata"):
            sample_ids.extend(m.sample_id for m in batch.metadata)
        batch = batch.to(accelerator.device)
        with accelerator.accumulate(model):
            out = model(**batch)
            if logs.keys is None:
                logs.keys = sorted(out.losses)
            terms = torch.stack([out.losses[k].detach().double() for k in logs.keys])
            acc = terms if acc is None else acc + terms
            bad += (~torch.isfinite(out.loss.detach())).double()
            accelerator.backward(out.loss)
    assert acc is not None and logs.keys is not None
    keys = logs.keys
    local_loss = float(acc[keys.index("loss")].item()) / cfg.train.grad_accum
    stats = accelerator.reduce(torch.cat([acc / cfg.train.grad_accum, bad.view(1)]), reduction="mean")
    max_norm = cfg.optim.max_grad_norm if cfg.optim.max_grad_norm is not None else float("inf")
    grad_norm = accelerator.clip_grad_norm_(run.trainable, max_norm)
    grad_norm_value = float(grad_norm.item()) if grad_norm is not None else float("nan")
    nonfinite = bool(stats[-1].item() > 0) or (grad_norm is not None and not math.isfinite(grad_norm_value))
    lr = float(run.scheduler.get_last_lr()[0])
    if nonfinite:
        run.optimizer.zero_grad(set_to_none=True)
        state.nonfinite_steps += 1
        logger.warning(
            "step %d: non-finite loss or gradient (loss terms %s, grad norm %s): update skipped (%d so far, limit %d)",
            state.step + 1,
            {k: float(v) for k, v in zip(keys, stats[:-1].tolist(), strict=True)},
            grad_norm_value,
            state.nonfinite_steps,
            cfg.train.max_nonfinite_steps,
        )
    else:
        run.optimizer.step()
        run.optimizer.zero_grad(set_to_none=True)
    run.scheduler.step()
    state.step += 1
    state.samples_seen += run.global_batch
    if batch_index + 1 >= run.usable:
        state.epoch, state.batch_in_epoch = epoch + 1, 0
    else:
        state.epoch, state.batch_in_epoch = epoch, batch_index + 1
    logs.window_samples += run.global_batch
    logs.window_time += time.perf_counter() - step_start
    return _Step(stats, grad_norm_value, nonfinite, lr, local_loss, sample_ids)


def _after_step(run: _Run, step: _Step, logs: _Logs, progress: Any) -> None:
    """After a step: the per-rank sample log, the train metrics every ``log_every`` steps, the stop after too
    many non-finite steps (with a checkpoint), validation every ``eval_every`` steps and at the end, and a
    checkpoint every ``save_every`` steps and at the end."""
    cfg, accelerator, state = run.cfg, run.accelerator, run.state
    if run.rank_log is not None:
        _append_jsonl(run.rank_log, {"step": state.step, "samples": step.sample_ids, "local_loss": step.local_loss})
    if state.step % cfg.train.log_every == 0 or state.step == cfg.train.max_steps:
        assert logs.keys is not None
        logs.last_train = {f"train/{k}": float(v) for k, v in zip(logs.keys, step.stats[:-1].tolist(), strict=True)}
        logs.last_train.update(
            {
                "train/lr": step.lr,
                "train/grad_norm": step.grad_norm,
                "train/nonfinite_steps": float(state.nonfinite_steps),
                "train/epoch": state.epoch + state.batch_in_epoch / run.usable,
                "train/samples_per_s": logs.window_samples / max(logs.window_time, 1e-9),
                "train/skipped": float(step.nonfinite),
            }
        )
        run.log_metrics(logs.last_train)
        progress.set_postfix(loss=f"{logs.last_train['train/loss']:.4f}", lr=f"{step.lr:.2e}")
        logs.window_time, logs.window_samples = 0.0, 0

    if state.nonfinite_steps > cfg.train.max_nonfinite_steps:
        run.save_checkpoint()
        progress.close()
        accelerator.end_training()
        raise NonFiniteLossError(
            f"{state.nonfinite_steps} steps with a non-finite loss or gradient (limit train.max_nonfinite_steps"
            f" = {cfg.train.max_nonfinite_steps}); stopped at step {state.step}, checkpoint saved in "
            f"{run.ckpt_root}. Lower optim.lr, check the data, or raise the limit and --resume."
        )

    is_last = state.step == cfg.train.max_steps
    if run.val_set is not None and ((cfg.train.eval_every and state.step % cfg.train.eval_every == 0) or is_last):
        logs.last_val = validation_loss(run.model, run.val_set, run.collate, cfg, accelerator)
        run.log_metrics(logs.last_val)
        logger.info("step %d: %s", state.step, {k: round(v, 5) for k, v in logs.last_val.items()})
    if (cfg.train.save_every and state.step % cfg.train.save_every == 0) or is_last:
        path = run.save_checkpoint()
        run.frame_log.write(run.frame_dir)
        if path is not None:
            logger.info("step %d: checkpoint %s", state.step, path)


def _finish(run: _Run, logs: _Logs) -> TrainResult:
    """The end: are the processes' parameters identical (DDP)? Then the final model directory."""
    accelerator, state, output_dir = run.accelerator, run.state, run.output_dir
    in_sync = _check_sync(accelerator, run.model, state.step, output_dir)
    final_dir = _save_final(accelerator, run.model, output_dir) if run.cfg.train.save_final_model else None
    accelerator.end_training()
    logger.info(
        "done: step %d, %d non-finite steps skipped, final model %s", state.step, state.nonfinite_steps, final_dir
    )
    if in_sync is False:
        raise RuntimeError(f"parameters diverged across processes; see {output_dir / 'sync_check.json'}")
    return TrainResult(
        step=state.step,
        nonfinite_steps=state.nonfinite_steps,
        output_dir=output_dir,
        final_dir=final_dir,
        last_train=logs.last_train,
        last_val=logs.last_val,
        in_sync=in_sync,
    )
