"""Importers: checkpoints of other code bases converted into loc3r checkpoints (``loc3r import``).

* :mod:`loc3r.model.importers.llava_qwen` — LLaVA-NeXT's ``llava_qwen`` layout (LLaVA-Video-7B-Qwen2, LLaVA-OneVision
  Qwen2 checkpoints and the published Loc3R-VLM weights built on them) into the ``llava_onevision`` backbone.
"""
