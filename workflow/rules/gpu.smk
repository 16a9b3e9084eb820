# How many training and prediction jobs run on the GPUs at once (included by common.smk; needs
# PRESET). gpu_slots 1: each job asks for `gpu: gpu_jobs` cards against `--resources gpu=N`.
# gpu_slots k > 1: each job asks for one `gpu_slot`, and the limit of gpu_slot is k per card of
# `--resources gpu=N` (registered here, so the command stays `--resources gpu=N`; an explicit
# `--resources gpu_slot=M` wins). Which card a job takes is msdnet.training.gpu_slots' business.
from msdnet.planning.workflow import gpu_resources, gpu_slot_limit

# A cluster executor (SLURM, Kubernetes) sizes each job's own allocation from `gpu`, so there a
# job always names `gpu` (msdnet.planning.workflow.gpu_resources); a CPU preset names no GPU at all.
GPU_RESOURCES = gpu_resources(PRESET.cfg, local=workflow.local_exec)


def _global_resource(name):
    res = workflow.global_resources.get(name)
    return getattr(res, "value", None)


GPU_SLOT_LIMIT = gpu_slot_limit(PRESET.cfg, _global_resource("gpu"), _global_resource("gpu_slot"))
if GPU_SLOT_LIMIT is not None:
    workflow.register_resource("gpu_slot", GPU_SLOT_LIMIT)
