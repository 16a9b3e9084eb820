"""The planning layer: run keys and paths (:mod:`.runs`), the job planner (:mod:`.workflow`), what
the notebook rule passes (:mod:`.notebooks`) and cluster profiles (:mod:`.cluster`).

Torch-free and matplotlib-free: Snakemake imports it in every process that reads the Snakefile.
"""
