"""SynthRooms: procedural indoor scenes rendered as posed monocular video with exact 3D ground truth.

Modules: :mod:`.catalog` (object vocabulary), :mod:`.scene` (room + furniture generation),
:mod:`.meta_info` (VSI-Bench ``meta_info`` layouts, read and write), :mod:`.mesh` (triangle geometry),
:mod:`.trajectory` (hand-held walks and novel viewpoints), :mod:`.render` (Embree ray casting),
:mod:`.freespace` and :mod:`.questions` (walkable space, situations and questions), :mod:`.writer`
(the on-disk dataset; its docstring documents the output layout). The CLI is ``loc3r synth``.
"""
