"""The training objectives of loc3r, one module each (DESIGN.md §2): :mod:`~loc3r.objectives.layout` (``L_BEV``),
:mod:`~loc3r.objectives.situation` (``<Pos>`` / ``<Ori>``; its pointer heads and anchor supervision in
:mod:`~loc3r.objectives.pointer`), :mod:`~loc3r.objectives.camera_prior` (an input: one token per frame),
:mod:`~loc3r.objectives.recognition` (base pretraining) and :mod:`~loc3r.objectives.qa` (``L_CE``).

Each owns its target builder from a clip's geometry, its head, its loss (formula in the docstring), its default
weight and its config fields (``CONFIG``, taken by :class:`loc3r.model.configuration_loc3r.Loc3rConfig`).
Shared pieces live in :mod:`~loc3r.objectives.common`; the weighted sum in :mod:`~loc3r.objectives.combine`.
"""
