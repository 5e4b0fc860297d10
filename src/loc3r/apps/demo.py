"""``loc3r demo``: do the layout and situation objectives beat plain fine-tuning and cue injection? (CPU)

What it does, end to end, with fixed seeds:

1. Generates a SynthRooms set (:mod:`loc3r.synthrooms`): rooms split by room into train / val / test, each
   test room re-rendered from a novel viewpoint (``test_novel_view``). Test rooms are never trained on.
2. Fine-tunes the shipped pretrained tiny base **loc3r-tiny** (:mod:`loc3r.apps.pretrained_base`: a Qwen2.5-VL-class
   model pretrained on recognition tasks with no spatial supervision; ``base=None`` trains from scratch instead)
   per variant with the real recipe (:func:`loc3r.train.recipe.train`), vision tower frozen as in the paper,
   identical data, steps, LR and seed; only the objectives differ:

   * ``lm_only`` — plain fine-tuning (CE only); localization is answered as TEXT coordinates in the BEV frame
     (``"x 1.2 y -0.4 yaw 90"``), parsed back for scoring — as a stock VLM would;
   * ``situation_only`` — ``<Pos> <Ori>`` situation heads, no layout objective;
   * ``cue_injection`` — situation heads + depth-derived 3D cues added to the vision tokens (gets depth at
     inference too: an oracle that needs a depth sensor), no layout objective;
   * ``cue_injection_est`` — the same with depth as a monocular estimator would give it (trained and evaluated
     with :data:`loc3r.core.geometry.MONOCULAR_DEPTH_ERROR`: per-clip scale error, relative noise, holes);
   * ``loc3r`` — layout + situation objectives, video only at inference;
   * ``loc3r_camera`` — loc3r + camera prior from the poses.

   Every variant trains on the same samples: situated QA, VSI-style QA and one text-localization sample per
   situation (:class:`loc3r.data.text_localization.TextLocalizationDataset`).
3. Evaluates on ``test`` (held-out rooms), ``novel_view`` (the same held-out rooms, new camera path; ``--full``) and per
   scene-complexity bin (object count) with the runner of ``loc3r eval`` (:func:`loc3r.evaluate.runner.evaluate`
   on the SynthRooms tasks of :mod:`loc3r.benchmarks.synthrooms.task`, the config ``configs/synth/eval/<split>.yaml``
   holds), prints ONE table with the settings and chance levels, writes
   ``OUT/results.json`` ``{variant: {split: {metric: value}}}`` and BEV pictures ``OUT/bev/*.png``.

Chance levels (``results.json["chance"]``): localization by predicting the training set's mean BEV pose
(position mean, circular-mean yaw — the "room centre / mean pose" guess), QA by the most frequent training
answer, VSI by the most frequent training answer per question type.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from loc3r.core.errors import ConfigError
from loc3r.core.geometry import MONOCULAR_DEPTH_ERROR
from loc3r.core.io import read_json, read_jsonl, write_json, write_jsonl, write_text
from loc3r.synthrooms.writer import SynthSettings, generate_dataset, read_index

logger = logging.getLogger("loc3r.apps.demo")

#: ``model.loc3r`` flags of each variant (the same as ``configs/demo/<variant>.yaml``).
VARIANTS: dict[str, dict[str, Any]] = {
    "lm_only": {"layout_objective": False, "situation_objective": False},
    "situation_only": {"layout_objective": False, "situation_objective": True},
    "cue_injection": {"layout_objective": False, "situation_objective": True, "cue_injection": True},
    "cue_injection_est": {
        "layout_objective": False,
        "situation_objective": True,
        "cue_injection": True,
        "cue_depth_error": dict(MONOCULAR_DEPTH_ERROR),
    },
    "loc3r": {"layout_objective": True, "situation_objective": True},
    "loc3r_camera": {"layout_objective": True, "situation_objective": True, "camera_prior": "poses"},
}

METRICS = ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg", "em", "overall", "sec_per_query")


@dataclasses.dataclass
class DemoSettings:
    """Everything that changes the demo's numbers (printed with the table and stored in results.json)."""

    #: the default run; --full adds cue_injection_est (estimated depth) and loc3r_camera
    variants: tuple[str, ...] = ("lm_only", "situation_only", "cue_injection", "loc3r")
    #: the pretrained base every variant is fine-tuned from: "loc3r-tiny" (shipped, hash-checked), a directory,
    #: or None to train the old tiny model from scratch (hidden_size / layers below)
    base: str | None = "loc3r-tiny"
    #: frozen during fine-tuning from a base, as the paper freezes its vision encoder
    freeze_vision_tower: bool = True
    seeds: tuple[int, ...] = (0,)
    #: the SynthRooms set (generated with seed ``data_seed`` of :func:`run_demo`; with fewer than 10 rooms there
    #: is no validation split). 112x112: 16 LLM vision tokens per 2 frames (64x64 gave 4: localization stayed at
    #: chance); situations_per_scene is asked for, SynthRooms keeps those whose named objects are visible.
    data: SynthSettings = dataclasses.field(
        default_factory=lambda: SynthSettings(
            num_scenes=80,
            frames=8,
            width=112,
            height=112,
            min_objects=4,
            max_objects=10,
            min_side=3.0,
            max_side=6.0,
            category_colors=False,
            val_fraction=0.05,
            test_fraction=0.2,
            situations_per_scene=40,
            questions_per_situation=2,
            write_video=False,
            # the novel-viewpoint re-renders of the test rooms are --full's (they double the evaluation)
            novel_view=False,
            # a camera that frames objects: 100 % of frames show an object (walk: 78 %), 99.8 % of a room's objects
            # are seen (walk: 80 %), 28 of 40 situations kept per room (walk: 18); benchmarks/RESULTS.md
            camera_policy="frame_objects",
            # each view held for 2 frames: every Qwen2.5-VL token (2 fused frames) shows ONE view; the perfect-attention
            # ceiling of the oracle rung rises from 33 to 61 Acc@1.0m and 49 to 80 Acc@30 (benchmarks/RESULTS.md)
            hold_frames=2,
        )
    )
    #: fine-tuning steps per variant, sized so that the default run fits 10 minutes on 2 CPU cores (each step of the
    #: 3 M-parameter base costs ~10x a step of the old 0.2 M from-scratch model; measured 2026-12-03 with two
    #: variants side by side: ~0.83 s per step each, 250-267 s for 300 steps); --full trains 1,200
    steps: int = 200
    #: Loss weights of the objectives, the same for every variant. The paper's 0.05 / 0.075 assume a pretrained
    #: VLM whose CE is already low; a model trained from scratch for a few hundred steps needs the heads' terms
    #: on the scale of CE to learn them at all (measured: at 0.075 the position NLL stays near its start).
    #: The ratio bev : situation = 2 : 3 of the paper is kept.
    situation_loss_weight: float = 1.0
    bev_loss_weight: float = 0.67
    #: the situation heads of every variant that localises with heads (the same type for all, so only objectives
    #: and inputs differ): "pointer" (ours, DESIGN.md §8; the paper's "mlp" heads stay at the room-centre guess at
    #: this width even with perfect perception) or "mlp"
    situation_head: str = "pointer"
    #: anchor supervision of the pointer heads (ours; 0 = off)
    anchor_loss_weight: float = 1.0
    #: where the pointer heads' query and keys come from (Loc3rConfig.pointer_query / pointer_keys; ablations of
    #: benchmarks/RESULTS.md "Issue 20")
    pointer_query: str = "state"
    pointer_keys: str = "final"
    #: "mean" (the attended tokens' mean + an offset) or "solve" (every relation of the text;
    #: Loc3rConfig.pointer_position)
    pointer_position: str = "mean"
    #: "pixels" (the frozen tower of the base), or a DIAGNOSTIC perfect-perception input of
    #: :mod:`loc3r.model.oracle_tower` for every variant (the top rungs of benchmarks/perception_ladder.py):
    #: "oracle_objects" (each token: what its footprint shows) or "oracle_layout" (one token per object)
    vision_input: str = "pixels"
    batch_size: int = 8
    lr: float = 1e-3
    #: the fresh objective heads' learning rate (None = lr): 5x the LLM's, so the pointer heads' queries / keys and
    #: the layout head learn within the budget (oracle rung, 400 steps: Acc@30° 27.5 at 5e-3; 16.2 at 1e-3 / 200 steps)
    head_lr: float | None = 5e-3
    warmup_steps: int = 20
    hidden_size: int = 64
    layers: int = 2
    eval_batch_size: int = 16
    max_eval: dict[str, int] | None = None
    pictures: int = 2
    #: torch intra-op threads. 1 by default: a tiny model gains nothing from intra-op parallelism, and on a shared
    #: 2-core machine spin-waiting OpenMP threads slowed steps 10-20x (measured) when another job ran.
    threads: int = 1
    #: data-loader worker processes (frame decoding + the processor run beside the training step); the
    #: SynthRooms generation uses one more process than this
    data_workers: int = 1
    #: variants fine-tuned and evaluated at once, each in its own process with ``threads`` torch threads and its
    #: data loaded in that process (no loader worker: the processor re-uses each room's clip work, so loading
    #: is a small part of a step). 2 on the 2-core box: measured 1.5x the samples/s of one variant with a loader
    #: worker. 1 = one after another in this process.
    parallel: int = 2
    #: a progress bar per stage (data, each variant's training)
    progress: bool = True
    #: checkpoint every this many fine-tuning steps (and at the end): ``run_demo(..., resume=True)`` /
    #: ``loc3r demo --resume`` continues an interrupted variant from its last checkpoint
    save_every: int = 200

    @property
    def frames(self) -> int:
        """Frames per clip (rendered, trained on and evaluated)."""
        return self.data.frames

    @property
    def size(self) -> int:
        """The (square) image side of the rendered frames."""
        return self.data.width

    def with_data(self, **changes: Any) -> DemoSettings:
        """A copy with SynthRooms settings changed (``num_scenes=120``, ``frames=6``, ...)."""
        return dataclasses.replace(self, data=dataclasses.replace(self.data, **changes))


def settings_overrides(items: list[str], settings: DemoSettings) -> dict[str, Any]:
    """``["FIELD=VALUE", ...]`` → ``{field: value}`` for the fields of the demo settings ``settings`` (values parsed as
    Python literals, else kept as text). ``data`` is set through ``--scenes``; an unknown field, or a value of another
    type than the field's default (an int for a float and one name for a tuple are taken), is a ConfigError."""
    fields = {f.name for f in dataclasses.fields(settings)} - {"data"}
    out: dict[str, Any] = {}
    for item in items:
        field, _, value = item.partition("=")
        if field not in fields or not value:
            raise ConfigError(f"--set {item!r}: expected FIELD=VALUE with FIELD one of {', '.join(sorted(fields))}")
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            parsed = value
        current = getattr(settings, field)
        if isinstance(current, tuple) and isinstance(parsed, list | str):
            parsed = tuple(parsed) if isinstance(parsed, list) else (parsed,)
        if isinstance(current, float) and type(parsed) is int:
            parsed = float(parsed)
        # checked here, before any data is generated; a field whose default is None takes any value
        if current is not None and type(parsed) is not type(current):
            raise ConfigError(
                f"--set {item!r}: {field} must be {type(current).__name__} (default {current!r}), "
                f"got {type(parsed).__name__}"
            )
        out[field] = parsed
    return out


DEFAULT = DemoSettings()
FULL = dataclasses.replace(
    DEFAULT.with_data(num_scenes=120, novel_view=True), variants=tuple(VARIANTS), seeds=(0, 1, 2), steps=1200
)
SMOKE = dataclasses.replace(
    # at 32x32 / 4 frames too few objects are visible for any held-out situation (SynthRooms v2)
    DEFAULT.with_data(
        num_scenes=6,
        frames=6,
        width=48,
        height=48,
        situations_per_scene=4,
        questions_per_situation=2,
        test_fraction=0.34,
        novel_view=True,
    ),
    variants=("lm_only", "loc3r"),
    steps=3,
    batch_size=2,
    max_eval={"loc": 4, "qa": 4, "vsi": 4},
    pictures=1,
    data_workers=0,
    progress=False,
)


def _recipe(data: Path, out: Path, variant: str, s: DemoSettings, seed: int, base: Path | None) -> Any:
    from loc3r.train.config import config_from_dict

    flags = VARIANTS[variant]
    loc3r: dict[str, Any] = dict(flags)
    if s.vision_input != "pixels":
        loc3r["vision_input"] = s.vision_input
    if flags["situation_objective"]:
        loc3r["situation_loss_weight"] = s.situation_loss_weight
        loc3r["situation_head"] = s.situation_head
        if s.situation_head == "pointer":
            loc3r["anchor_loss_weight"] = s.anchor_loss_weight
            # written only where they differ from Loc3rConfig's defaults (the configs/demo recipes stay as they are)
            model_defaults = (("pointer_query", "state"), ("pointer_keys", "final"), ("pointer_position", "mean"))
            for name, model_default in model_defaults:
                if getattr(s, name) != model_default:
                    loc3r[name] = getattr(s, name)
    if flags["layout_objective"]:
        loc3r["bev_loss_weight"] = s.bev_loss_weight
    model: dict[str, Any] = {"backbone": "qwen2_5_vl", "loc3r": loc3r}
    if base is None:
        text = {"hidden_size": s.hidden_size, "num_hidden_layers": s.layers, "intermediate_size": 2 * s.hidden_size}
        model.update(init="tiny", tiny={"vocab_size": 512, "text_config": text}, freeze_vision_tower=False)
    else:
        model.update(init="pretrained", pretrained_dir=str(base), freeze_vision_tower=s.freeze_vision_tower)
    splits = [{"kind": kind, "root": str(data), "split": "train"} for kind in ("synth", "synth_loc_text")]
    optim = dict(lr=s.lr, head_lr=s.head_lr, warmup_steps=s.warmup_steps, min_lr_ratio=0.1, weight_decay=0.01)
    train = dict(max_steps=s.steps, batch_size=s.batch_size, log_every=50, progress_bar=s.progress, keep_last=1)
    recipe = {
        "seed": seed,
        "output_dir": str(out),
        "model": model,
        "data": {"train": splits, "num_frames": s.frames, "num_workers": s.data_workers},
        "optim": optim,
        "train": {**train, "save_every": s.save_every},
    }
    return config_from_dict(recipe, source=f"demo variant {variant}")


def resolve_base(base: str | None) -> Path | None:
    """The base directory of ``DemoSettings.base``: the shipped loc3r-tiny (its hashes checked), a directory, or
    None (from scratch)."""
    if base is None:
        return None
    from loc3r.apps.pretrained_base import BASE_DIR, BaseError, verify_base

    if base == "loc3r-tiny":
        verify_base(BASE_DIR)
        return BASE_DIR
    path = Path(base)
    if not (path / "config.json").is_file():
        raise BaseError(f"demo base {path}: no config.json (expected a loc3r checkpoint directory)")
    if (path / "SHA256SUMS").is_file():
        verify_base(path)
    return path


def _chance(train_sets: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Chance-level scores on the evaluated splits: mean training pose, majority answers."""
    from loc3r.benchmarks.synthrooms.task import score_synth
    from loc3r.data.text_localization import parse_pose_text

    loc = train_sets["loc"]
    poses = [parse_pose_text(r) for r in (loc[i].answer for i in range(len(loc)))]
    xy = np.mean([p[0] for p in poses if p is not None], axis=0)
    yaws = np.array([p[1] for p in poses if p is not None])
    mean_yaw = float(np.arctan2(np.sin(yaws).mean(), np.cos(yaws).mean()))
    qa_counts = Counter(r.answers[0] for r in train_sets["qa"].records if r.answers)
    qa_majority = qa_counts.most_common(1)[0][0]
    by_type: dict[str, Counter] = {}
    for r in train_sets["vsi"].records:
        by_type.setdefault(r.question_type, Counter())[r.ground_truth] += 1
    vsi_major = {t: c.most_common(1)[0][0] for t, c in by_type.items()}
    fake = []
    for r in records:
        f = dict(r, seconds=0.0)
        if r["set"] == "loc":
            f.update(position_bev=xy.tolist(), yaw_bev=mean_yaw)
        elif r["set"] == "qa":
            f["answer"] = qa_majority
        else:
            f["prediction"] = vsi_major.get(r["question_type"])
        fake.append(f)
    scores = score_synth(fake)
    for v in scores.values():
        v.pop("sec_per_query", None)
    return scores


def _aggregate(per_seed: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Mean over seeds (and ``<metric>_std`` when there are several) of every numeric metric."""
    out: dict[str, dict[str, Any]] = {}
    for split in per_seed[0]:
        out[split] = {}
        for metric, value in per_seed[0][split].items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            vals = [s[split][metric] for s in per_seed if s.get(split, {}).get(metric) is not None]
            out[split][metric] = float(np.mean(vals))
            if len(per_seed) > 1:
                out[split][f"{metric}_std"] = float(np.std(vals))
    return out


def _fmt(scores: dict[str, Any], metric: str) -> str:
    value = scores.get(metric)
    if value is None:
        return "-"
    digits = 3 if metric == "sec_per_query" else 1
    std = scores.get(f"{metric}_std")
    return f"{value:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def _table(column: str, rows: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """Markdown lines: rows = (variant, ``column``, scores), columns = the demo metrics."""
    header = f"| variant | {column} | Acc@0.5m | Acc@1.0m | Acc@15° | Acc@30° | QA EM | VSI overall | s/query |"
    cells = [f"| {name} | {key} | " + " | ".join(_fmt(scores, m) for m in METRICS) + " |" for name, key, scores in rows]
    return [header, "|" + "---|" * 9, *cells]


def format_results_table(results: dict[str, Any]) -> str:
    """One Markdown table: rows = variant × split (+ chance rows), columns = the demo metrics."""
    rows = [(name, split, scores) for name, splits in results["variants"].items() for split, scores in splits.items()]
    rows += [("chance", split, scores) for split, scores in results.get("chance", {}).items()]
    return "\n".join(_table("split", [r for r in rows if "/" not in r[1]]))  # complexity bins: their own table


#: The paper's localization ablation: situation only < + layout < + camera prior (DESIGN.md §2).
ABLATION_ORDER = ("situation_only", "loc3r", "loc3r_camera")


def ablation_order(results: dict[str, Any], metric: str = "acc@1.0m") -> list[str]:
    """One line per evaluated split saying whether the paper's ablation order holds on ``metric`` (with each
    variant's value and, over several seeds, its std), reported either way; empty when a variant of the order did
    not run."""
    if not all(v in results for v in ABLATION_ORDER):
        return []
    lines = []
    for split in ("test", "novel_view"):
        scores = [results[v].get(split, {}) for v in ABLATION_ORDER]
        if any(metric not in s for s in scores):
            continue
        values = [s[metric] for s in scores]
        holds = values[0] < values[1] < values[2]
        shown = " < ".join(f"{v} {_fmt(s, metric)}" for v, s in zip(ABLATION_ORDER, scores, strict=True))
        lines.append(f"# ablation order on {split} {metric}: {shown}: {'holds' if holds else 'does NOT hold'}")
    return lines


def _pictures(records: list[dict[str, Any]], sets: dict[str, Any], out: Path, tag: str, count: int) -> list[str]:
    from loc3r.apps.viz import plot_bev
    from loc3r.core.geometry import anchor_frame
    from loc3r.data.text_localization import bev_ground_truth  # noqa: F401 - documents the frame

    paths = []
    loc = [r for r in records if r["set"] == "loc"][:count]
    by_id = {sets["loc"][i].sample_id: i for i in range(len(sets["loc"]))} if loc else {}
    for r in loc:
        sample = sets["loc"][by_id[r["sample_id"]]]
        anchor = anchor_frame(sample.poses[0])
        traj = anchor.poses_to_bev(sample.poses)
        p = plot_bev(
            out / f"{tag}-{r['sample_id']}.png",
            layout_xy=None if r.get("layout_bev") is None else np.asarray(r["layout_bev"]),
            trajectory=traj,
            pred_xy=r.get("position_bev"),
            pred_yaw=r.get("yaw_bev"),
            pred_sigma=r.get("position_sigma"),
            gt_xy=r["gt_xy_bev"],
            gt_yaw=r["gt_yaw_bev"],
            title=f"{tag}: {sample.situation_text}",
            layout_frame=r.get("layout_frame"),
        )
        paths.append(str(p))
    return paths


def _base_hashes(base: Path) -> dict[str, str]:
    sums = base / "SHA256SUMS"
    if not sums.is_file():
        return {}
    return {name: digest for digest, name in (line.split() for line in sums.read_text().splitlines() if line)}


@dataclasses.dataclass(frozen=True)
class _VariantJob:
    """One variant x seed of the demo: fine-tune, evaluate on the held-out splits, score (picklable: it may run in a
    worker process)."""

    data: Path
    out: Path
    variant: str
    settings: DemoSettings
    seed: int
    base: Path | None
    bins: dict[str, str]
    picture: bool
    resume: bool = False

    def fingerprint(self) -> dict[str, Any]:
        """What makes this job's result: a finished result is reused on resume only when this matches."""
        base = None if self.base is None else {"path": str(self.base), **_base_hashes(self.base)}
        return {
            "variant": self.variant,
            "seed": self.seed,
            "data": str(self.data.resolve()),
            "base": base,
            "bins": self.bins,
            "settings": json.loads(json.dumps(dataclasses.asdict(self.settings), default=str)),
        }


#: settings fields that do not change a variant's numbers (a resumed run may differ in them)
_RESUMABLE_SETTINGS = ("variants", "seeds", "parallel", "progress", "pictures", "data_workers")


def _same_job(stored: dict[str, Any], job: _VariantJob) -> bool:
    """Whether a stored job fingerprint would give ``job``'s numbers."""

    def comparable(fingerprint: dict[str, Any]) -> dict[str, Any]:
        settings = {k: v for k, v in fingerprint.get("settings", {}).items() if k not in _RESUMABLE_SETTINGS}
        return {**fingerprint, "settings": settings}

    return comparable(stored) == comparable(job.fingerprint())


def _run_variant(job: _VariantJob, position: int | None = None) -> dict[str, Any]:
    """Train and evaluate one variant; writes ``runs/<variant>-seed<seed>/`` (model, predictions.jsonl)."""
    import torch

    from loc3r.benchmarks.synthrooms.task import score_synth, synth_eval_config, synth_eval_sets
    from loc3r.data.schema import SampleError
    from loc3r.evaluate.runner import evaluate, load_model
    from loc3r.train.recipe import train

    s = job.settings
    torch.manual_seed(0)
    torch.set_num_threads(s.threads)
    run_dir = job.out / "runs" / f"{job.variant}-seed{job.seed}"
    done_file = run_dir / "result.json"
    if job.resume and done_file.is_file():  # finished before the interruption: read back, never re-run
        done = read_json(done_file, "finished demo variant")  # malformed: an error naming the file
        if not isinstance(done, dict) or not isinstance(done.get("result"), dict):
            raise ValueError(f"{done_file}: field 'result' is missing; delete the file to run this variant again")
        if not _same_job(done.get("job", {}), job):
            raise ValueError(
                f"{done_file}: this variant finished with other settings than this run's; resume with the same "
                "settings, or use another --out"
            )
        return done["result"]
    recipe = _recipe(job.data, run_dir, job.variant, s, job.seed, job.base)
    if position is not None:  # side by side with another variant: one process per core, no loader process
        recipe = recipe.model_copy(update={"data": recipe.data.model_copy(update={"num_workers": 0})})
    t0 = time.perf_counter()
    # resume: from the newest checkpoint (every save_every steps); the trainer refuses one of another config
    result = train(recipe, resume=job.resume and (run_dir / "checkpoints").is_dir(), progress_position=position)
    train_seconds = time.perf_counter() - t0
    if result.final_dir is None:
        raise RuntimeError(f"demo variant {job.variant}: training wrote no final model in {run_dir}")
    t0 = time.perf_counter()
    model = load_model(result.final_dir)
    splits = read_index(job.data)["splits"]
    records: list[dict[str, Any]] = []
    for split, name in (("test", "test"), ("test_novel_view", "novel_view")):
        if not splits.get(split):
            continue
        # the runner of `loc3r eval --config configs/synth/eval/<split>.yaml`, on this variant's model
        config = synth_eval_config(
            result.final_dir, job.data, split, s.frames, run_dir / "eval", s.eval_batch_size, s.max_eval
        )
        skipped: list[dict[str, Any]] = []
        recs = evaluate(
            model, config, progress=s.progress, source=f"demo {job.variant}", skipped=skipped,
            progress_position=position,
        )  # fmt: skip
        if skipped:  # generated data: a sample that cannot be loaded is a bug, never a silent gap
            raise SampleError(f"demo {job.variant} {split}: samples could not be loaded: {skipped[:3]}")
        for r in recs:
            r["split"] = name
        records.extend(recs)
    write_jsonl(run_dir / "predictions.jsonl", records)
    pictures: list[str] = []
    if job.picture and s.pictures:
        sets = synth_eval_sets(job.data, "test", s.frames)
        test_recs = [r for r in records if r["split"] == "test"]
        pictures = _pictures(test_recs, sets, job.out / "bev", job.variant, s.pictures)
    result = {
        "scores": score_synth(records, job.bins),
        "train_seconds": train_seconds,
        "eval_seconds": time.perf_counter() - t0,
        "pictures": pictures,
    }
    write_json(done_file, {"job": job.fingerprint(), "result": result})  # atomic: a variant is done or not
    return result


_worker_position: int | None = None


def _init_worker(counter: Any) -> None:
    """Give each worker process its own progress-bar line."""
    global _worker_position
    with counter.get_lock():
        _worker_position = counter.value
        counter.value += 1


def _run_in_worker(job: _VariantJob) -> dict[str, Any]:
    return _run_variant(job, position=_worker_position)


def _run_jobs(jobs: list[_VariantJob], parallel: int) -> Any:
    """Yield ``(job, result)`` as jobs finish: in this process one after another (``parallel`` 1), else in a pool of
    ``parallel`` spawned processes (spawn: the parent holds torch threads and open files a fork would copy)."""
    if parallel <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield job, _run_variant(job)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    counter = ctx.Value("i", 0)
    workers = min(parallel, len(jobs))
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(counter,)) as pool:
        futures = {pool.submit(_run_in_worker, job): job for job in jobs}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _complexity_bins(index: dict[str, Any]) -> tuple[float, dict[str, str]]:
    """Complexity bins by object count (held-out rooms): below / at-or-above the median of the test rooms."""
    test_scenes = index["splits"]["test"] + index["splits"].get("test_novel_view", [])
    counts = {s: int(index["scenes"][s]["num_objects"]) for s in test_scenes}
    median = float(np.median(list(counts.values()))) if counts else 0.0
    bins = {s: (f"objects<{median:g}" if c < median else f"objects>={median:g}") for s, c in counts.items()}
    return median, bins


def _print_summary(
    print_fn: Any, s: DemoSettings, base: Path | None, data_seed: int, info: dict, results: dict, table: str
) -> list[str]:
    """Print the run's header, the prompts, the results table, the per-bin table and the ablation order; returns
    the per-bin table's lines."""
    median = info["complexity_bins"]["median"]
    if base is None:
        model_line = f"tiny Qwen2.5-VL from scratch (hidden {s.hidden_size}, {s.layers} layers)"
    else:
        from loc3r.apps.pretrained_base import base_summary

        facts = base_summary(base)
        model_line = (
            f"fine-tuned from base {base.name} (vision {facts['vision']}; LLM {facts['llm']}; "
            f"tower {'frozen' if s.freeze_vision_tower else 'trained'})"
        )
    print_fn(
        f"# loc3r demo: {model_line}, {s.frames} frames "
        f"{s.size}x{s.size}, {s.steps} steps x batch {s.batch_size}, lr {s.lr} (heads {s.head_lr}), "
        f"seeds {list(s.seeds)}; SynthRooms "
        f"{s.data.num_scenes} rooms (objects {s.data.min_objects}-{s.data.max_objects}, data seed {data_seed}): "
        f"{info['rooms']}; train samples {info['train_samples']}; bins by object count (median {median:g})"
    )
    print_fn(f"# prompts: {json.dumps(info['task_settings'])}")
    print_fn(table)
    bins = [(v, split, scores) for v, splits in results.items() for split, scores in splits.items() if "/" in split]
    bin_lines = _table("bin", bins)
    print_fn("\n".join(bin_lines))
    for line in ablation_order(results):
        print_fn(line)
    return bin_lines


def run_demo(
    out: str | Path, settings: DemoSettings = DEFAULT, data_seed: int = 0, print_fn: Any = print, resume: bool = False
) -> dict:
    """Run the demo into ``out``; returns (and writes to ``out/results.json``) the results dict.

    ``resume``: continue an interrupted run in ``out`` with the same settings: the SynthRooms set resumes at the
    first unfinished room, variants that finished are read back from ``runs/<variant>-seed<seed>/result.json``, the
    others continue from their last checkpoint (every ``settings.save_every`` steps). Without it, an ``out`` that
    holds a variant's checkpoints is refused."""
    import torch

    from loc3r.benchmarks.synthrooms.task import synth_eval_sets, task_settings

    unknown = sorted(set(settings.variants) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown demo variant(s) {unknown}; known: {list(VARIANTS)}")
    out = Path(out)
    base = resolve_base(settings.base)  # before any work: a damaged base must stop the demo at once
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    data = out / "synthrooms"
    few = settings.data.num_scenes is not None and settings.data.num_scenes < 10
    synth = dataclasses.replace(settings.data, seed=data_seed, val_fraction=0.0 if few else settings.data.val_fraction)
    generate_dataset(data, synth, workers=settings.data_workers + 1, progress=settings.progress)
    index = read_index(data)
    t_data = time.perf_counter() - t_start
    median, bins = _complexity_bins(index)
    train_sets = synth_eval_sets(data, "train", settings.frames)
    torch.set_num_threads(settings.threads)

    per_variant: dict[str, list[dict[str, dict[str, Any]]]] = {v: [] for v in settings.variants}
    train_seconds: dict[str, list[float]] = {v: [] for v in settings.variants}
    pictures: dict[str, list[str]] = {}
    jobs = [
        _VariantJob(data, out, variant, settings, seed, base, bins, picture=seed == settings.seeds[0], resume=resume)
        for seed in settings.seeds
        for variant in settings.variants
    ]
    done: dict[tuple[int, str], dict[str, Any]] = {}
    for job, result in _run_jobs(jobs, settings.parallel):
        done[(job.seed, job.variant)] = result
        acc = result["scores"].get("test", {}).get("acc@1.0m", float("nan"))
        print_fn(
            f"[demo] {job.variant} seed {job.seed}: trained {result['train_seconds']:.0f}s, evaluated "
            f"{result['eval_seconds']:.0f}s, test acc@1.0m {acc:.1f}"
        )
    for job in jobs:  # in the fixed order of seeds and variants, whatever order they finished in
        result = done[(job.seed, job.variant)]
        per_variant[job.variant].append(result["scores"])
        train_seconds[job.variant].append(result["train_seconds"])
        if job.picture and settings.pictures:
            pictures[job.variant] = result["pictures"]
    last = jobs[-1]
    last_records = read_jsonl(out / "runs" / f"{last.variant}-seed{last.seed}" / "predictions.jsonl")
    results: dict[str, Any] = {v: _aggregate(per_variant[v]) for v in settings.variants}
    chance = _chance(train_sets, last_records)
    tsplits = index["splits"]
    info = {
        "settings": dataclasses.asdict(settings),
        "base": None if base is None else {"path": str(base), **_base_hashes(base)},
        "data_seed": data_seed,
        "task_settings": task_settings(settings.frames, (settings.size, settings.size)),
        "rooms": {k: len(v) for k, v in tsplits.items()},
        "train_samples": {k: len(v) for k, v in train_sets.items()},
        "complexity_bins": {"by": "num_objects", "median": median},
        "train_seconds": {v: float(np.mean(s)) for v, s in train_seconds.items()},
        "data_seconds": t_data,
        "total_seconds": time.perf_counter() - t_start,
        "torch_threads": torch.get_num_threads(),
        # the kernels the numbers came from (``loc3r demo`` pins AVX2 on x86: loc3r.commands.demo.pin_cpu_numerics)
        "cpu_kernels": {
            "capability": torch.backends.cpu.get_cpu_capability(),
            **{k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "DNNL_MAX_CPU_ISA")},
            "torch": torch.__version__,
        },
        "parallel": min(settings.parallel, len(jobs)),
        "pictures": pictures,
    }
    info["ablation_order"] = ablation_order(results)
    payload = {**results, "chance": chance, "_info": info}
    write_json(out / "results.json", payload, indent=2)
    table = format_results_table({"variants": results, "chance": chance})
    bin_lines = _print_summary(print_fn, settings, base, data_seed, info, results, table)
    print_fn(f"# total {info['total_seconds']:.0f}s (data {t_data:.0f}s); results in {out / 'results.json'}")
    write_text(out / "results.md", table + "\n\n" + "\n".join(bin_lines) + "\n")
    return payload
