"""Training engine of loc3r: typed recipe config, builders, checkpointing and the training recipe.

Entry points: ``loc3r train CONFIG.yaml`` (:mod:`loc3r.commands.train`) and :func:`loc3r.train.recipe.train`.
Heavy modules (builders, recipe) are imported lazily by their users.
"""
