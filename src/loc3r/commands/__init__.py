"""CLI sub-commands: every module here exposes ``register(subparsers)`` (see :mod:`loc3r.cli`)."""
