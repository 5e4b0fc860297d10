"""Foundations: errors, small-file io, typed YAML configs, the one coordinate convention (geometry)."""
