"""The inference layer: a trained network on data. Predictions files (:mod:`.predictions`,
:mod:`.predict`), per-exit confidences (:mod:`.scores`), real early-exit inference
(:mod:`.early_exit`, :mod:`.fast_exit`) and the import of the authors' checkpoints
(:mod:`.authors`).

Imports core, models, data and training's checkpoints and devices, never its trainer.
"""
