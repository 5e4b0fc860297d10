"""Dataset loaders, the sample schema and the SynthRooms generator."""
