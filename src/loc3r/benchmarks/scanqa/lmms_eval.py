"""ScanQA's lmms-eval task ``loc3r_scanqa`` (EM@1, BLEU-1..4, METEOR, ROUGE-L, CIDEr)."""

from __future__ import annotations

from loc3r.integrations.lmms_eval.spec import LmmsTask

LMMS_TASKS = {
    "loc3r_scanqa": LmmsTask(
        "scanqa", ("em@1", "em-r", "bleu-1", "bleu-2", "bleu-3", "bleu-4", "meteor", "rouge-l", "cider")
    ),
}
