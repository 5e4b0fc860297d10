"""SynthRooms tasks (the ``loc3r demo`` benchmark): situated localization, situated QA, VSI-style QA.

Three tasks, evaluated by the same runner as the real benchmarks (``loc3r eval --config
configs/synth/eval/<split>.yaml``), one SynthRooms split each (an evaluation config's ``data`` of kind ``synth``):

* ``synth_localization`` (records ``set: loc``) — one sample per *situation*, like SQA3D's localization task:
  user text ``"{situation} [<Pos> <Ori>] {LOC_QUESTION}"``. Models with situation heads are scored on the heads'
  ``<Pos>``/``<Ori>`` outputs (the question comes after the two tokens, so a causal LM cannot use it there;
  nothing is generated). A plain fine-tuned model (``lm_only``) answers with text coordinates in the clip's BEV
  anchor frame, ``"x 1.2 y -0.4 yaw 90"`` (metres, metres, degrees, :func:`format_pose_text`, up to 32 new
  tokens: ~20 with a tiny BPE), parsed back with :func:`parse_pose_text` — what a stock VLM would have to do. An
  unparsable answer is a missing prediction (wrong at every threshold). Acc@0.5m/1.0m/15°/30° + medians
  (:func:`loc3r.evaluate.localization.localization_metrics`), measured in the clip's BEV anchor frame: rigid, so
  identical to world-frame errors.
* ``synth_qa`` (``set: qa``) — the SQA3D-format records of SynthRooms, ``"{situation} [<Pos> <Ori>] {question}"``
  → short answer; EM@1 with LEO's answer normalisation (:func:`loc3r.evaluate.qa.qa_exact_match`).
* ``synth_vsi`` (``set: vsi``) — SynthRooms' VSI-Bench-format records (options one per line after the question,
  as the processor lays them out in training); :func:`loc3r.benchmarks.vsibench.metric.score_vsibench` (MC exact match,
  MRA, 8-task ``overall``); the records are also written as ``OUT/vsibench_predictions.jsonl``, the
  ``loc3r score vsibench`` input.

The group ``synthrooms`` runs the three on one split and scores them per split (:func:`score_synth`:
``{split: {metric: value}}``, the shape of the demo's ``results.json``). The prompts are the ones the model was
trained on (the processor's, no suffix); greedy decoding, 16 new tokens for answers.

Frames: ``num_frames`` uniformly sampled over the scan (:func:`loc3r.data.video.uniform_indices`), all
frames of a SynthRooms scan when it has exactly that many; ``num_frames: null`` = the checkpoint's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from loc3r.core.config import ConfigError
from loc3r.data.schema import ClipSample
from loc3r.data.text_localization import LOC_QUESTION, bev_ground_truth, parse_pose_text
from loc3r.evaluate.task import JsonlTask, Task

_log = logging.getLogger("loc3r.evaluate")

if TYPE_CHECKING:
    from loc3r.evaluate.benchmark_config import EvalConfig


def task_settings(num_frames: int, image_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The pinned prompt templates and frame sampling, printed with every result."""
    return {
        "localization_prompt": "{situation} [<Pos> <Ori>] " + LOC_QUESTION,
        "localization_answer_format": "x {metres:.1f} y {metres:.1f} yaw {degrees:d} (BEV anchor frame, text "
        "parsed for lm_only; heads otherwise)",
        "qa_prompt": "{situation} [<Pos> <Ori>] {question}",
        "vsi_prompt": "{question}\\n{options one per line}",
        "frames": f"{num_frames} uniformly sampled" + (f" at {image_size[0]}x{image_size[1]}" if image_size else ""),
        "decoding": "greedy",
    }


#: how localization decodes (``max_new_tokens`` of the settings is the answers')
_LOC_DECODING = {
    "localization_decoding": "situation heads (no tokens generated), or up to 32 tokens of text coordinates for "
    "a model without heads (lm_only)"
}


def _as_list(x: Any) -> list[float] | None:
    return None if x is None else [float(v) for v in np.asarray(x).reshape(-1)]


class SynthTask(Task):
    """What the three SynthRooms tasks share: the split's samples as the model was trained on them (no prompt
    suffix, options laid out by the processor), a shard predicted as a whole (every question of a room is on its
    one scan: the video prefix is encoded once per room), and the common record fields."""

    #: the ``set`` of the records (``loc`` / ``qa`` / ``vsi``: the demo's files and scripts read these)
    set_key: ClassVar[str]
    #: ``build_synth`` tasks of the split this task reads
    synth_tasks: ClassVar[tuple[str, ...]]
    whole_shard = True

    @property
    def set_name(self) -> str:
        return self.set_key

    def build_dataset(self, config: EvalConfig, num_frames: int, source: str) -> Any:
        from loc3r.benchmarks.synthrooms.reader import build_synth
        from loc3r.data.builders import EmptySplitError

        spec = config.data.model_copy(update={"max_samples": None})
        if "tasks" in spec.options:
            raise ConfigError(f"{source}: key 'data.options.tasks' is set by the benchmark's tasks; remove it")
        try:
            return build_synth(spec, num_frames=num_frames, tasks=self.synth_tasks, **spec.options)
        except EmptySplitError as err:  # e.g. still images that ground no situation: the other tasks are scored
            _log.warning("%s: %s; not scored", self.name, err)
            return []

    def build_prompt(self, sample: Any, config: EvalConfig) -> Any:
        return sample  # the training prompt: the processor adds situation, <Pos> <Ori> and the options

    def prompt_settings(self, config: EvalConfig) -> dict[str, Any]:
        settings = {**task_settings(config.num_frames or 0), **_LOC_DECODING}
        return {k: v for k, v in settings.items() if k.startswith(self.prompt_keys)}

    prompt_keys: ClassVar[tuple[str, ...]] = ()

    def record(self, sample: ClipSample, prediction: Any) -> dict[str, Any]:
        return {
            "task": sample.task,
            "answer": prediction.answer,
            "references": list(sample.answers),
            # joins a situated question to its situation's localization (QA accuracy when localized)
            "situation": sample.situation_text,
        }

    def metrics(self, records: Sequence[dict[str, Any]], where: str = "") -> dict[str, Any]:
        """The task's metrics over its records of one split (``where`` names them in errors)."""
        raise NotImplementedError

    def score(
        self, records: Sequence[dict[str, Any]], config: EvalConfig, out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.metrics(records, config.data.split), {"metric": self.metric}


class SynthLocalizationTask(SynthTask):
    """Situated localization on SynthRooms: heads, or text coordinates for a model without them."""

    name = "synth_localization"
    title = "SynthRooms situated localization"
    metric = (
        "x-y distance and |yaw diff| in [0,180] deg in the clip's BEV anchor frame, strict <; an unparsed text "
        "answer is wrong everywhere"
    )
    set_key = "loc"
    synth_tasks = ("situated",)
    prompt_keys = ("localization",)

    #: ``heads`` (situation heads) or ``text`` (parse the answer); set by :meth:`check_model`
    localization: str = "heads"

    def check_model(self, model: Any, checkpoint: str | Path) -> None:
        """Localize with the heads when the model has the situation objective, else from its text answer."""
        self.localization = "heads" if model.config.situation_enabled else "text"

    def build_dataset(self, config: EvalConfig, num_frames: int, source: str) -> Any:
        from loc3r.data.text_localization import TextLocalizationDataset

        base = super().build_dataset(config, num_frames, source)
        return TextLocalizationDataset(base) if len(base) else base

    def max_new_tokens(self, config: EvalConfig) -> int:
        # text coordinates "x -1.2 y 3.4 yaw -135" are ~20 tokens with a tiny BPE; the heads need none
        return 0 if self.localization == "heads" else 32

    def record(self, sample: ClipSample, prediction: Any) -> dict[str, Any]:
        rec = super().record(sample, prediction)
        gt_xy, gt_yaw = bev_ground_truth(sample)
        rec.update(gt_xy_bev=gt_xy.tolist(), gt_yaw_bev=gt_yaw, localization=self.localization)
        if self.localization == "heads":
            rec.update(
                position_bev=_as_list(prediction.position_bev),
                yaw_bev=prediction.yaw_bev,
                position_sigma=_as_list(prediction.position_sigma),
                yaw_confidence=prediction.yaw_confidence,
                yaw_probabilities=_as_list(prediction.yaw_probabilities),
            )
        else:
            parsed = parse_pose_text(prediction.answer)
            rec.update(
                position_bev=None if parsed is None else parsed[0].tolist(),
                yaw_bev=None if parsed is None else parsed[1],
            )
        rec["layout_bev"] = None if prediction.layout_mean is None else prediction.layout_mean.tolist()
        rec["layout_median_err_m"] = prediction.extras.get("layout_median_err_m")
        rec["layout_frame"] = None if prediction.layout_frame is None else prediction.layout_frame.tolist()
        return rec

    def metrics(self, records: Sequence[dict[str, Any]], where: str = "") -> dict[str, Any]:
        from loc3r.evaluate.localization import localization_metrics

        nan2 = [float("nan")] * 2
        pred_xy = np.array([r["position_bev"] if r["position_bev"] is not None else nan2 for r in records])
        pred_yaw = np.array([r["yaw_bev"] if r["yaw_bev"] is not None else float("nan") for r in records])
        m = localization_metrics(
            np.array([r["gt_xy_bev"] for r in records]), np.array([r["gt_yaw_bev"] for r in records]), pred_xy, pred_yaw
        )
        scores = {k: m[k] for k in ("acc@0.5m", "acc@1.0m", "acc@15deg", "acc@30deg")}
        scores.update(
            median_pos_err_m=m["median_pos_err_m"],
            median_ori_err_deg=m["median_ori_err_deg"],
            n_loc=m["n"],
            unparsed_loc=int(np.isnan(pred_yaw).sum()),
        )
        layout_errors = [r.get("layout_median_err_m") for r in records if r.get("layout_median_err_m") is not None]
        if layout_errors:  # the layout head's held-out error: median over clips of each clip's median token error
            scores["layout_median_err_m"] = float(np.median(layout_errors))
        return scores


class SynthQATask(SynthTask):
    """Situated QA on SynthRooms (EM@1)."""

    name = "synth_qa"
    title = "SynthRooms situated QA"
    metric = "LEO clean_answer; EM@1 exact match"
    set_key = "qa"
    synth_tasks = ("situated",)
    prompt_keys = ("qa",)

    def metrics(self, records: Sequence[dict[str, Any]], where: str = "") -> dict[str, Any]:
        from loc3r.evaluate.qa import qa_exact_match

        m = qa_exact_match([r["answer"] for r in records], [r["references"] for r in records])
        return {"em": m["em@1"], "n_qa": m["n"]}


class SynthVSITask(SynthTask):
    """VSI-style questions on SynthRooms (the VSI-Bench score)."""

    name = "synth_vsi"
    title = "SynthRooms VSI-style QA"
    metric = (
        "thinking-in-space lmms-eval: first token MC match; MRA over 0.50:0.95:0.05; rel_direction = mean "
        "of easy/medium/hard; overall = mean of 8 tasks"
    )
    set_key = "vsi"
    synth_tasks = ("vsi",)
    prompt_keys = ("vsi",)
    predictions_file = "vsibench_predictions.jsonl"
    fields = ("id", "question_type", "ground_truth", "prediction")

    def record(self, sample: ClipSample, prediction: Any) -> dict[str, Any]:
        rec = super().record(sample, prediction)
        rec.update(
            id=sample.sample_id,
            question_type=sample.meta.get("question_type"),
            ground_truth=sample.answer,
            prediction=prediction.answer,
        )
        return rec

    #: the VSI records as a ``loc3r score vsibench`` input file
    write_predictions = JsonlTask.write_predictions

    def metrics(self, records: Sequence[dict[str, Any]], where: str = "") -> dict[str, Any]:
        from loc3r.benchmarks.vsibench.metric import score_vsibench

        m = score_vsibench([{k: r[k] for k in self.fields} for r in records], source=f"{where} vsi predictions")
        scores = {k: v for k, v in m.items() if not k.startswith("n/") and k not in ("n", "no_prediction")}
        scores["n_vsi"] = m["n"]
        return scores

    def score(
        self, records: Sequence[dict[str, Any]], config: EvalConfig, out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        path = self.write_predictions(records, out_dir)
        settings = {"predictions": str(path), "rescore": f"loc3r score vsibench --predictions {path}"}
        return self.metrics(records, config.data.split), {**settings, "metric": self.metric}


def _synth_tasks() -> list[SynthTask]:
    """Fresh instances of the group's tasks, in the order they are evaluated and their records written."""
    return [SynthLocalizationTask(), SynthQATask(), SynthVSITask()]


#: record ``set`` -> task name, in the order the group evaluates them
SYNTH_SETS: dict[str, str] = {"loc": "synth_localization", "qa": "synth_qa", "vsi": "synth_vsi"}


class SynthRoomsTask(Task):
    """The group of the three SynthRooms tasks on one split, scored per split (see the module docstring)."""

    name = "synthrooms"
    title = "SynthRooms"
    metric = "; ".join(f"{c.set_key}: {c.metric}" for c in (SynthLocalizationTask, SynthQATask, SynthVSITask))
    scores_by_split = True

    def parts(self) -> list[Task]:
        return list(_synth_tasks())

    def prompt_settings(self, config: EvalConfig) -> dict[str, Any]:
        settings = {**task_settings(config.num_frames or 0), **_LOC_DECODING}
        return {k: v for k, v in settings.items() if k not in ("frames", "decoding")}

    def score(
        self, records: Sequence[dict[str, Any]], config: EvalConfig, out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        vsi = SynthVSITask()
        path = vsi.write_predictions([r for r in records if r["set"] == vsi.set_name], out_dir)
        settings = {"vsi_predictions": str(path), "rescore_vsi": f"loc3r score vsibench --predictions {path}"}
        return score_synth(records), {**settings, "metric": self.metric}


def score_synth(records: Sequence[dict[str, Any]], bins: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Scores of SynthRooms prediction records: ``{split_name: {metric: value}}`` with each task's metrics
    (``acc@0.5m``, ``acc@1.0m``, ``acc@15deg``, ``acc@30deg`` + medians; ``em``; the VSI task names +
    ``overall``) and ``sec_per_query``. ``bins`` maps scene id → bin name; each bin adds a ``<split>/<bin>``
    entry (the demo's complexity bins)."""
    tasks = _synth_tasks()
    groups: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault(rec["split"], []).append(rec)
        if bins is not None and rec["scene_id"] in bins:
            groups.setdefault(f"{rec['split']}/{bins[rec['scene_id']]}", []).append(rec)
    out: dict[str, dict[str, Any]] = {}
    for name, recs in groups.items():
        scores: dict[str, Any] = {}
        for task in tasks:
            mine = [r for r in recs if r["set"] == task.set_name]
            if mine:
                scores.update(task.metrics(mine, name))
        scores["sec_per_query"] = float(np.mean([r["seconds"] for r in recs]))
        out[name] = scores
    return out


def synth_eval_config(
    checkpoint: str | Path,
    root: str | Path,
    split: str,
    num_frames: int | None,
    output_dir: str | Path,
    batch_size: int = 8,
    max_samples: dict[str, int] | int | None = None,
    benchmark: str = "synthrooms",
) -> EvalConfig:
    """The evaluation config of a SynthRooms split (what ``configs/synth/eval/<split>.yaml`` holds), for callers
    that evaluate in Python (the demo, benchmark scripts). ``max_samples`` may be keyed by record set
    (``{"loc": 4, "qa": 4, "vsi": 4}``, the demo's ``max_eval``) or by task name."""
    if isinstance(max_samples, dict):
        max_samples = {SYNTH_SETS.get(k, k): v for k, v in max_samples.items()}
    from loc3r.evaluate.benchmark_config import EvalConfig

    return EvalConfig(
        benchmark=benchmark,
        checkpoint=Path(checkpoint),
        output_dir=Path(output_dir),
        data={"kind": "synth", "root": Path(root), "split": split},
        num_frames=num_frames,
        batch_size=batch_size,
        max_samples=max_samples,
    )


def synth_eval_sets(root: str | Path, split: str, num_frames: int) -> dict[str, Any]:
    """The datasets of the three SynthRooms tasks on a split, by record set: ``loc`` (one per situation), ``qa``,
    ``vsi`` (the demo reads the training split's for its chance levels)."""
    config = synth_eval_config(".", root, split, num_frames, ".")
    return {task.set_name: task.build_dataset(config, num_frames, str(root)) for task in _synth_tasks()}


TASKS: dict[str, type[Task]] = {
    "synthrooms": SynthRoomsTask,
    "synth_localization": SynthLocalizationTask,
    "synth_qa": SynthQATask,
    "synth_vsi": SynthVSITask,
}
