"""The error types that mean *bad input* (a file, record, field, config key or flag the user can fix).

``loc3r`` reports these as one line on stderr, ``loc3r CMD: error: MESSAGE``, with exit code 2 — in one place,
:func:`loc3r.cli.main`; commands never catch-and-print them themselves. The full set the CLI maps
(:data:`loc3r.cli.USER_ERRORS`, documented in CONTRIBUTING.md):

* :class:`SampleError` — a data file / record / field is malformed (re-exported by :mod:`loc3r.data.schema`);
  the message names the file, the record and the field;
* :class:`ConfigError` — a config file, config key, ``--set`` override or command-line value is invalid
  (re-exported by :mod:`loc3r.core.config`); the message names the file and the key;
* :class:`loc3r.core.geometry.GeometryError` — invalid poses / intrinsics / depth (a ``ValueError``);
* :class:`loc3r.train.checkpointing.CheckpointError` — a checkpoint cannot be resumed or read;
* :class:`loc3r.synthrooms.writer.DatasetError` — a SynthRooms directory cannot be generated / resumed;
* :class:`loc3r.train.recipe.NonFiniteLossError` — training diverged (the message says which terms);
* ``FileNotFoundError`` — a path given by the user does not exist (the message names it);
* ``ValueError`` — any other bad value raised on purpose by a ``raise`` statement (a subclass above is preferred:
  it says what kind of input is wrong); one raised inside a builtin (``min([])``, a codec) is a bug and keeps its
  traceback (:func:`loc3r.cli.is_user_error`);
* an OS error about a path (``FileExistsError``, ``NotADirectoryError``, ``IsADirectoryError``, ``PermissionError``
  with a file name): the path and what is wrong with it.

This module sits below every other (it imports nothing), so the lowest layers (``loc3r.core.io``) can raise these.
"""

from __future__ import annotations


class SampleError(ValueError):
    """A sample or record is malformed; the message names the sample / file and the field."""


class ConfigError(ValueError):
    """A config file, config key or override is invalid; the message names the file and the key."""
