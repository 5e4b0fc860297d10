"""Bridges from loc3r to other frameworks (top layer, beside :mod:`loc3r.commands`: they import loc3r, nothing
in loc3r imports them). :mod:`loc3r.integrations.lmms_eval` — an lmms-eval model plugin and task YAMLs."""
