"""The evaluation layer: analyses of predictions files (:mod:`.analysis`), the workflow's tables
(:mod:`.tables`), test images of a data set (:mod:`.images`) and the notebooks' helpers
(:mod:`.notebooks`).
"""
