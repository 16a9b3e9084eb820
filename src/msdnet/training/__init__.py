"""The training layer: the run config (:mod:`.config`, torch-free), checkpoints
(:mod:`.checkpoint`), the trainer (:mod:`.train`), precision, torchrun and which card a job takes.

Imports core, models and data. Nothing is imported here, so ``msdnet.training.config`` stays
torch-free (the planner reads it).
"""
