"""SynthRooms: the generated rooms benchmark (localization, situated QA, VSI-style questions) that `loc3r demo`
evaluates; the world generator that writes it is :mod:`loc3r.synthrooms`."""
