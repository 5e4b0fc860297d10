"""The loc3r model: backbone adapters, objective heads, camera prior and cue injection."""
