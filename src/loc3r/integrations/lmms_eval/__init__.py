"""lmms-eval plugin: a loc3r chat model and the loc3r benchmark tasks, scored with loc3r's metric code.

Install lmms-eval next to loc3r (``make install`` does; see README "Evaluating with lmms-eval"), then::

    export LOC3R_EVAL_CONFIGS=configs/paper/eval          # folder with sqa3d.yaml, scanqa.yaml, ... (the default)
    lmms-eval --model loc3r --model_args pretrained=runs/x/final,num_frames=32 \\
        --include_path "$(python -m loc3r.integrations.lmms_eval)" \\
        --tasks loc3r_sqa3d,loc3r_sqa3d_localization,loc3r_scanqa,loc3r_msqa --batch_size 8 --output_path out/
    lmms-eval --model loc3r --model_args pretrained=runs/x/final --tasks vsibench   # lmms-eval's own VSI-Bench

**Model.** The ``loc3r`` model is registered through the ``lmms_eval.models`` entry-point group (the mechanism
lmms-eval ≥ 0.6 reads in ``lmms_eval.models.registry_v2``; the entry point is :func:`manifest`). It is a chat
model (``is_simple = False``: it reads the task's ``doc_to_messages``), :class:`~.model.Loc3rLmms`, loading a
checkpoint directory with :func:`loc3r.model.loading.load_model` and answering with the same batched
:func:`loc3r.evaluate.runner.predict_samples` as ``loc3r eval`` (greedy only; ``do_sample`` / ``num_beams > 1``
are refused, naming the task). Model arguments: ``pretrained`` (checkpoint directory, required),
``num_frames`` (frames per video for tasks that give a video path, default: the checkpoint's, else 32),
``batch_size``, ``device``.

**Tasks** (the YAML files of the benchmark folders ``loc3r/benchmarks/<name>/``, :data:`TASKS_DIR` loaded with
``--include_path``; each folder's ``lmms_eval.py`` declares them, :mod:`.spec`; tag ``loc3r`` runs all eight):
``loc3r_sqa3d`` (EM@1 / EM-R and per question type), ``loc3r_sqa3d_localization`` (Acc@0.5m / 1.0m / 15° / 30°),
``loc3r_scanqa`` (EM@1, BLEU-1..4, METEOR, ROUGE-L, CIDEr), ``loc3r_msqa`` (EM@1 / EM-R + caption metrics; the
paper's GPT-judged score is not computed), ``loc3r_vsibench_debiased`` (VSI-Bench's 8 tasks + overall),
``loc3r_viewspatial`` (overall + per question type), ``loc3r_vsisuper_recall`` (accuracy) and
``loc3r_vsisuper_count`` (MRA). The documents of the last four carry their prediction record's reference fields
(``loc3r_fields``), so the response is scored by the loc3r task as ``loc3r eval`` does. VSI-SUPER's streaming count
is not an lmms-eval task: a ``generate_until`` request has one answer, the benchmark asks at several times of one
streamed video; it runs through ``loc3r eval --config vsisuper_count_streaming.yaml``
(:mod:`loc3r.apps.stream_eval`, ``loc3r stream``'s session).
Each task is a view of the loc3r evaluation config of its benchmark,
``$LOC3R_EVAL_CONFIGS/<benchmark>.yaml`` (default ``configs/paper/eval``, as ``loc3r eval --config`` reads it):
its ``data`` (built by loc3r's own loader, so every coordinate conversion stays in one place), ``num_frames``,
``max_samples``, ``camera_root`` and pinned ``prompt`` suffix; its ``checkpoint`` is ignored (the model comes from
``--model_args``). Documents are the loader's records, one per question (:mod:`.docs`); a document's text is the
pinned question, its video the scene's frame source. Scores come from the loc3r task's own ``score`` (the
``loc3r score`` functions, :mod:`.scoring`), so they equal ``loc3r eval --config`` on the same predictions
(tested on SynthRooms files in the real formats). VSI-Bench is lmms-eval's own ``vsibench`` task (its prompt and
scoring, not loc3r's: lmms-eval 0.7 reads numerical answers with a looser ``extract_number`` than the
thinking-in-space rule of ``loc3r score vsibench``).

**Localization output.** ``generate_until`` returns text; the ``<Pos>``/``<Ori>`` heads are not text. For a
``loc3r_sqa3d_localization`` document the loc3r model generates no tokens and returns one JSON object as its
response: the loc3r task's prediction record, ``{"question_id", "position": {x, y, z}, "rotation": {_x, _y, _z,
_w}, "candidates", "position_bev": [x, y], "yaw_bev", "position_sigma", "yaw_confidence"}`` — the heads' pose in
the clip's BEV frame and mapped back to SQA3D's frame by :func:`loc3r.benchmarks.sqa3d.task.sqa3d_pose_record`,
the one place that inverts the loader's conversion. The task's ``process_results`` parses it; a response that is
not such an object (another model, a sample that failed to load) counts as a missing prediction, i.e. wrong.

Bad input: an unknown task name, a missing config / checkpoint directory, a config of another benchmark — a
:class:`~loc3r.core.errors.ConfigError` or ``FileNotFoundError`` naming the task, file or key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: the name of the model in lmms-eval (``--model loc3r``)
MODEL_ID = "loc3r"
#: the chat model class, imported by lmms-eval only when the model is asked for
MODEL_CLASS = "loc3r.integrations.lmms_eval.model.Loc3rLmms"
#: the folder to give lmms-eval as ``--include_path``: the benchmark folders, each holding its task YAMLs
TASKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"


def manifest() -> Any:
    """The ``lmms_eval.models`` entry point: a ``ModelManifest`` naming the chat class (imported lazily by
    lmms-eval, so registering costs no torch import)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=MODEL_ID, chat_class_path=MODEL_CLASS)
