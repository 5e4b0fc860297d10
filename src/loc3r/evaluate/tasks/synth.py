"""SynthRooms tasks (the ``loc3r demo`` benchmark): situated localization, situated QA, VSI-style QA.

Pinned prompts (the processor wraps them in the backbone's chat template, see
:mod:`loc3r.model.processing`):

* **Localization** (one sample per *situation*, like SQA3D's localization task): user text
  ``"{situation} [<Pos> <Ori>] {LOC_QUESTION}"``. Models with situation heads are scored on the heads'
  ``<Pos>``/``<Ori>`` outputs (the question comes after the two tokens, so a causal LM cannot use it there).
  A plain fine-tuned model (``lm_only``) answers with text coordinates in the clip's BEV anchor frame,
  ``"x 1.2 y -0.4 yaw 90"`` (metres, metres, degrees, :func:`format_pose_text`), parsed back with
  :func:`parse_pose_text` — what a stock VLM would have to do. An unparsable answer is a missing prediction
  (wrong at every threshold).
* **Situated QA**: the SQA3D-format records of SynthRooms, ``"{situation} [<Pos> <Ori>] {question}"`` → short
  answer; EM@1 with LEO's answer normalisation (:func:`loc3r.evaluate.qa.qa_exact_match`).
* **VSI-style QA**: SynthRooms' VSI-Bench-format records (options one per line after the question);
  scored with :func:`loc3r.evaluate.vsibench.score_vsibench` (MC exact match, MRA, 8-task ``overall``).

Frames: ``num_frames`` uniformly sampled over the scan (:func:`loc3r.data.video.uniform_indices`), all
frames of a SynthRooms scan when it has exactly that many.

Localization errors are measured in the clip's BEV anchor frame: rigid, so identical to world-frame errors.
"""

from __future__ import annotations

from typing import Any

from loc3r.data.text_localization import LOC_QUESTION, bev_ground_truth, parse_pose_text

# re-exported for callers written before they moved to loc3r.data.text_localization (the demo)
__all__ = ["bev_ground_truth", "parse_pose_text", "task_settings"]


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
