"""SQA3D on the real files: situated QA (EM@1 / EM-R) and situation localization (Acc@0.5m/1.0m/15°/30°).

Data: an evaluation config's ``data`` of kind ``sqa3d`` (:func:`loc3r.benchmarks.sqa3d.reader.build_sqa3d`): the
official question + annotation file pair of the split, frames from ScanNet (or a ``loc3r prepare`` cache).
One sample per question.

**QA** (``benchmark: sqa3d``)

* Prompt (pinned): user text ``"{situation} [<Pos> <Ori>] {question}\\n{prompt.suffix}"`` — the processor adds
  the situation (and ``<Pos> <Ori>`` when the model has situation heads) and the backbone's chat template;
  the task only appends the config's suffix to the question. Greedy decoding, ``generation.max_new_tokens``.
* Prediction record (the ``loc3r score sqa3d-qa`` input): ``OUT/sqa3d_predictions.json``, a JSON list of
  ``{"question_id": int, "answer": str, "question": str}``.
* Score: :func:`loc3r.benchmarks.sqa3d.metric.score_sqa3d_qa` against the official annotations file, with the
  questions file for the per-type breakdown (``em@1``, ``em-r``, ``em@1/<type>`` ...).

**Localization** (``benchmark: sqa3d_localization``)

* The ``<Pos>`` / ``<Ori>`` heads give ``(x, y)`` and yaw in the clip's BEV anchor frame (first frame's pose);
  no text is generated. :func:`sqa3d_pose_record` maps them back to SQA3D's own convention with
  :func:`loc3r.benchmarks.sqa3d.reader.bev_to_sqa3d` — anchor → world (rotation about z + translation, DESIGN.md
  §2), then
  the inverse of the loader's conversion: the scene's axis alignment ``A`` and the raw-mesh bbox centre
  ``c_raw`` (``p = A⁻¹ p_world − c_raw``, agent facing local −x; for SynthRooms files, convention
  ``loc3r_world``: no centre, facing +x). The loader's and this inverse are exact inverses, so ground truth
  goes through unchanged (tested).
* Prediction record (the ``loc3r score sqa3d-loc`` input): ``OUT/sqa3d_localization_predictions.json``,
  a JSON list of ``{"question_id", "position": {"x","y","z"}, "rotation": {"_x","_y","_z","_w"}}``.
* Score: :func:`loc3r.benchmarks.sqa3d.metric.score_sqa3d_localization` against the official annotations
  file (each entry's ``position`` / ``rotation``), per situation by default — each ``(scene, situation text)``
  of the questions file counted once, the paper's unit (719 test situations) — or per question with the
  config key ``localization_unit: question``; a unit without prediction counts as wrong.
* Models without situation heads (``lm_only``) cannot localize on a real benchmark (text coordinates are only
  defined in SynthRooms' demo task): a :class:`~loc3r.train.config.ConfigError` names checkpoint and benchmark.
* ``localization_candidates: 2|3`` (SQA3D scores the closest of up to 3): the heads' pose first, then the
  orientation distribution's other modes and positions spread by the calibrated sigma
  (:func:`loc3r.evaluate.calibration.pose_candidates` with the config's ``position_sigma_temperature`` and
  ``candidate_spread``, both fitted on validation by ``benchmarks/calibrate_poses.py``); the prediction file then
  holds ``{"question_id", "candidates": [{position, rotation}, ...]}``.

``max_samples`` evaluates an evenly spread subset; the scores are then over that subset and the official
file restricted to it is written next to the predictions (``*_annotations_subset.json``) so that
``loc3r score`` reproduces the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loc3r.core.config import ConfigError
from loc3r.data.schema import ClipSample, SampleError
from loc3r.evaluate.task import Task, restrict_references, write_json_file

if TYPE_CHECKING:
    from loc3r.evaluate.benchmark_config import EvalConfig


def _official_pair(
    config: EvalConfig, records: Sequence[dict[str, Any]], out_dir: Path, prefix: str
) -> tuple[Path, Path]:
    """The official annotations and questions files of the config's split; for a subset evaluation, both restricted
    to the evaluated questions and written to ``OUT/<prefix>_{annotations,questions}_subset.json`` (so that
    ``loc3r score`` re-scores the same numbers)."""
    from loc3r.benchmarks.sqa3d.reader import find_sqa3d_file
    from loc3r.core.io import read_json_or_jsonl

    ids = {str(r["question_id"]) for r in records} if any(r.get("subset") for r in records) else None
    paths = []
    for kind, key in (("sqa_annotations", "annotations"), ("questions", "questions")):
        # the official file of the split, found as the loader finds it
        path = find_sqa3d_file(config.data.root, f"v1_balanced_{kind}_{config.data.split}_scannetv2.json")
        if ids is not None:
            out = out_dir / f"{prefix}_{key}_subset.json"
            path = restrict_references(read_json_or_jsonl(path), key, ids, out, path)
        paths.append(path)
    return paths[0], paths[1]


class _OfficialFilesTask(Task):
    """An SQA3D task scored against the split's official annotations (+ questions) files: :attr:`scorer` of
    :mod:`loc3r.benchmarks.sqa3d.metric` (``score_files`` = ``loc3r score <score_command>``)."""

    scorer: str
    data_kinds = ("sqa3d",)

    def score_options(self, config: EvalConfig) -> dict[str, Any]:
        """Config options of the scorer (and of its ``loc3r score`` command line)."""
        return {}

    def options_settings(self, metrics: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        return {}

    def score_files(
        self,
        predictions: str | Path,
        *,
        annotations: str | Path,
        questions: str | Path | None = None,
        strict: bool = False,
        **options: Any,
    ) -> dict[str, Any]:
        from loc3r.benchmarks.sqa3d import metric
        from loc3r.core.io import read_json_or_jsonl
        from loc3r.evaluate.records import load_records

        return getattr(metric, self.scorer)(
            read_json_or_jsonl(annotations),
            load_records(predictions),
            questions=read_json_or_jsonl(questions) if questions else None,
            strict=strict,
            annotations_source=str(annotations),
            predictions_source=str(predictions),
            questions_source=str(questions),
            **options,
        )

    def score(
        self, records: Sequence[dict[str, Any]], config: EvalConfig, out_dir: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        ann_path, q_path = _official_pair(config, records, out_dir, self.name)
        options = self.score_options(config)
        metrics, settings = self.score_against(records, out_dir, annotations=ann_path, questions=q_path, **options)
        settings.update(self.options_settings(metrics, options))  # (the rescore command has the options as flags)
        return metrics, settings


class SQA3DQATask(_OfficialFilesTask):
    """SQA3D situated QA: EM@1 / EM-R, per question type (see the module docstring)."""

    name = "sqa3d"
    scorer = "score_sqa3d_qa"
    title = "SQA3D question answering"
    predictions_file = "sqa3d_predictions.json"
    score_command = "sqa3d-qa"
    metric = "LEO clean_answer; EM@1 exact, EM-R exact or containment; types by question prefix"

    def record(self, sample: ClipSample, prediction: Any) -> dict[str, Any]:
        return {"question_id": sample.meta["question_id"], "question": sample.question, "answer": prediction.answer}

    def write_predictions(self, records: Sequence[dict[str, Any]], out_dir: Path) -> Path:
        rows = [{"question_id": r["question_id"], "answer": r["answer"], "question": r["question"]} for r in records]
        return write_json_file(out_dir / self.predictions_file, rows)


def sqa3d_pose_record(sample: ClipSample, xy_bev: Sequence[float] | np.ndarray, yaw_bev: float) -> dict[str, Any]:
    """A BEV pose of ``sample``'s clip → ``{"position": {x,y,z}, "rotation": {_x,_y,_z,_w}}`` in the convention
    of the sample's SQA3D file (:func:`loc3r.benchmarks.sqa3d.reader.bev_to_sqa3d` with the clip's first pose, axis
    alignment and raw-mesh bbox centre, as the loader used them in the other direction)."""
    from loc3r.benchmarks.sqa3d.reader import bev_to_sqa3d

    where = f"sample {sample.sample_id!r} (scene {sample.scene_id!r})"
    if sample.poses is None:
        raise SampleError(f"{where}: field 'poses' is needed to map a BEV pose back to SQA3D's frame")
    convention = sample.meta.get("convention", "sqa3d")
    centre = sample.meta.get("mesh_bbox_center")
    if convention == "sqa3d" and centre is None:
        raise SampleError(
            f"{where}: field meta['mesh_bbox_center'] is unknown (give the dataset option 'scene_meta' or "
            "'scans_root'); the prediction cannot be written in SQA3D's bbox-centred frame"
        )
    alignment = sample.meta.get("axis_alignment")
    alignment = None if alignment is None else np.asarray(alignment, dtype=np.float64).reshape(4, 4)
    position, rotation = bev_to_sqa3d(
        np.asarray(xy_bev, dtype=np.float64),
        float(yaw_bev),
        np.asarray(sample.poses)[0],
        axis_alignment=alignment,
        mesh_bbox_center=centre,
        convention=convention,
    )
    return {"position": position, "rotation": rotation}


class SQA3DLocalizationTask(_OfficialFilesTask):
    """SQA3D situation localization from the ``<Pos>``/``<Ori>`` heads (see the module docstring)."""

    name = "sqa3d_localization"
    scorer = "score_sqa3d_localization"
    title = "SQA3D localization"
    predictions_file = "sqa3d_localization_predictions.json"
    score_command = "sqa3d-loc"
    metric = (
        "SQA3D utils/localization_metric.py: x-y distance, |yaw diff| in [0,180] deg, closest of <=3 "
        "candidates (position and orientation each), strict <"
    )

    #: set from the config by :meth:`check_config` (which the runner calls before any record)
    candidates: int = 1
    temperature: float = 1.0
    spread: float = 1.0

    def check_config(self, config: EvalConfig, source: str) -> None:
        super().check_config(config, source)
        self.candidates = config.localization_candidates
        self.temperature = config.position_sigma_temperature
        self.spread = config.candidate_spread

    def check_model(self, model: Any, checkpoint: str | Path) -> None:
        if not model.config.situation_enabled:
            raise ConfigError(
                f"{checkpoint}: this checkpoint has no situation heads (<Pos>/<Ori>; e.g. an lm_only model), and "
                f"benchmark {self.name!r} needs them: localization from generated text is only defined for the "
                "SynthRooms demo task, not for the real SQA3D benchmark"
            )

    def max_new_tokens(self, config: EvalConfig) -> int:
        return 0  # the heads read the prompt; nothing is generated

    def question_text(self, sample: Any, config: EvalConfig) -> str:
        return sample.question  # after <Pos> <Ori>: a causal LM's heads cannot see it anyway

    def shared_prediction_key(self, sample: Any) -> str | None:
        """One forward pass per (scene, situation): the heads read ``<Pos>``/``<Ori>``, which come before the
        question, so with causal attention every question of a situation gets the same pose (SQA3D test:
        3,519 questions, 719 situations)."""
        return f"{sample.scene_id}\x00{sample.situation_text}"

    def prompt_settings(self, config: EvalConfig) -> dict[str, Any]:
        return {
            "prompt": "{situation} <Pos> <Ori> {question}",
            "localization": "<Pos>/<Ori> heads (BEV anchor frame) -> SQA3D frame, mapped back with the first "
            "frame's pose, axis alignment and raw-mesh bbox centre",
        }

    def record(self, sample: ClipSample, prediction: Any) -> dict[str, Any]:
        qid = sample.meta["question_id"]
        if prediction.position_bev is None or prediction.yaw_bev is None:
            raise SampleError(f"sample {sample.sample_id!r}: the model returned no <Pos>/<Ori> prediction")
        pose = sqa3d_pose_record(sample, prediction.position_bev, prediction.yaw_bev)
        candidates = None
        if self.candidates > 1:
            from loc3r.evaluate.calibration import pose_candidates

            if prediction.position_sigma is None:
                raise SampleError(f"sample {sample.sample_id!r}: the model returned no position sigma for candidates")
            candidates = [
                sqa3d_pose_record(sample, xy, yaw)
                for xy, yaw in pose_candidates(
                    prediction.position_bev,
                    prediction.position_sigma,
                    getattr(prediction, "yaw_probabilities", None),
                    prediction.yaw_bev,
                    k=self.candidates,
                    temperature=self.temperature,
                    spread=self.spread,
                )
            ]
        return {
            "question_id": qid,
            **pose,
            "candidates": candidates,
            "position_bev": [float(v) for v in np.asarray(prediction.position_bev).reshape(-1)],
            "yaw_bev": float(prediction.yaw_bev),
            "position_sigma": None
            if prediction.position_sigma is None
            else [float(v) for v in np.asarray(prediction.position_sigma).reshape(-1)],
            "yaw_confidence": prediction.yaw_confidence,
        }

    def write_predictions(self, records: Sequence[dict[str, Any]], out_dir: Path) -> Path:
        rows = [
            {"question_id": r["question_id"], "candidates": r["candidates"]}
            if r.get("candidates")
            else {"question_id": r["question_id"], "position": r["position"], "rotation": r["rotation"]}
            for r in records
        ]
        return write_json_file(out_dir / self.predictions_file, rows)

    def score_options(self, config: EvalConfig) -> dict[str, Any]:
        return {"unit": config.localization_unit}

    def options_settings(self, metrics: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        unit = options["unit"]
        return {"unit": f"{unit} ({metrics['n']} {unit}s of {metrics['n_questions']} questions)"}


TASKS: dict[str, type[Task]] = {"sqa3d": SQA3DQATask, "sqa3d_localization": SQA3DLocalizationTask}
