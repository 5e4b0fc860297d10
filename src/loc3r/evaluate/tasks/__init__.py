"""Evaluation tasks in the style of lmms-eval: per benchmark, a pinned prompt and a scorer.

Each task module states the exact prompt template, frame count and sampling; :func:`task_settings`
returns them as a dict that is printed next to every result (peer projects' numbers moved by several
CIDEr points with one prompt suffix, so the prompt is part of the result).

Tasks:

* :mod:`loc3r.evaluate.tasks.synth` — SynthRooms situated localization (heads or text coordinates, the pose-text
  format and dataset in :mod:`loc3r.data.text_localization`), situated QA (EM@1) and VSI-style questions
  (VSI-Bench score), the tasks of ``loc3r demo``.

The real benchmarks (``loc3r eval --config configs/paper/eval/<benchmark>.yaml``), one
:class:`~loc3r.evaluate.benchmark_config.BenchmarkTask` each (prompt = question + the config's pinned
suffix; prediction file = the ``loc3r score`` input of the benchmark; score = the existing metric function):

* :mod:`loc3r.evaluate.tasks.sqa3d` — ``sqa3d`` (situated QA, EM@1 / EM-R per question type) and
  ``sqa3d_localization`` (``<Pos>``/``<Ori>`` heads mapped back to SQA3D's frame, Acc@0.5m/1.0m/15°/30°);
* :mod:`loc3r.evaluate.tasks.scanqa` — ``scanqa`` (EM@1, BLEU-1..4, METEOR, ROUGE-L, CIDEr);
* :mod:`loc3r.evaluate.tasks.vsibench` — ``vsibench`` (options one per line, multiple-choice vs numerical
  suffix by question type; MC accuracy, MRA, 8 tasks + overall);
* :mod:`loc3r.evaluate.tasks.msqa` — ``msqa`` (situated open answers; EM@1 / EM-R per type and the caption
  metrics — the paper's GPT-judged score is not computed).

:func:`loc3r.evaluate.benchmark_config.get_task` returns the task of a benchmark name (lazy import).
"""
