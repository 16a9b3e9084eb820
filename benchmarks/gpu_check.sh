#!/usr/bin/env bash
# The one script for a lent GPU (about 15 minutes of device time in all, 2-4 of them starting
# the machine): it finishes within GPU_CHECK_BUDGET_S (default 540 s), every step under its own
# `timeout`, in priority order, so a slow compile never eats a more important step. For a machine
# whose python3 has PyTorch; the package runs from src/, nothing is installed.
#
#     bash benchmarks/gpu_check.sh [--quick] [STEP ...]      # default: a b c mps e d
#     GPU_CHECK_DEVICE=cpu bash benchmarks/gpu_check.sh --quick   # every step on a CPU, minutes
#
# a. early-exit inference benchmark on the device and its tests (tests/test_fast_exit.py)
# b. packing: k = 1, 2, 4 concurrent CIFAR-100 MSDNet trainings on the card, no MPS
#    (bench_packing.py: aggregate and per-process images/s, batch 64, the fast path)
# c. ImageNet-size throughput: the ImageNet MSDNet (k=4) and ResNet-50 at 224x224, batch 256
#    (bench_train.py; eager first, then compiled + CUDA graphs as time allows)
# mps. packing again under CUDA MPS, when nvidia-cuda-mps-control exists and time remains
# e. the existing CUDA training tests (fast path, data pipeline), if time remains
# d. (always last) the GPU-hours table re-rendered from this session's CSVs and the first
#    session's CIFAR rows (docs/benchmarks/bench_train-cuda-h100.csv): gpu_hours.{csv,md}
#
# Expected on an H100 (each step's limit, then what it shrinks to): machine 10 s; a <= 195 s
# (tests ~30 s, benchmark ~45 s + the compiled baseline's compile);
# b ~150 s (four workers compile the step in parallel, ~90 s, then 3 rounds of seconds);
# c eager ~80 s, compiled in what is left (70 s at least, else skipped); mps and e only if the
# earlier steps ran short; d ~10 s. On a 2-core CPU with --quick: about 2 minutes.
#
# Everything lands in $OUT (default results/gpu_check; the device tool collects $OUT):
# gpu_check.log (the whole story), machine.txt, bench_*.csv/.md, gpu_hours.{csv,md} and each
# step's own log. Afterwards, on the workstation, file them with
#     bash benchmarks/collect_gpu_check.sh <folder with the collected files>
# which copies them to docs/benchmarks/<date>-<card>/ (commit that folder).
set -u
QUICK=""
if [[ ${1:-} == --quick ]]; then QUICK=--quick; shift; fi
OUT=${OUT:-results/gpu_check}
DEV=${GPU_CHECK_DEVICE:-cuda}
BUDGET=${GPU_CHECK_BUDGET_S:-540}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MSDNET_NO_DOWNLOAD=1
PY=${PYTHON:-python3}
exec > >(tee "$OUT/gpu_check.log") 2>&1          # the whole story in one file
STEPS=" ${*:-a b c mps e d} "
want() { [[ $STEPS == *" $1 "* ]]; }
step() { echo; echo "=== $* ($(date +%T), ${SECONDS}s of ${BUDGET}s)"; }
quiet() { grep -v "^W1[0-9]\{3\} \|^ *warnings.warn\|UserWarning" || true; }
RESERVE=25                                       # kept for step d
# left MAX: seconds this step may take: MAX, or what the budget leaves after step d's reserve
left() { local l=$((BUDGET - SECONDS - RESERVE)); echo $(( l < $1 ? l : $1 )); }
# run NAME MAX MIN CMD...: CMD under timeout (left MAX), skipped when fewer than MIN seconds are left
run() {
    local name=$1 max=$2 min=$3; shift 3
    local t; t=$(left "$max")
    if (( t < min )); then echo "skipped: ${t}s left, needs ${min}s"; return 0; fi
    echo "+ timeout $t $*"
    timeout --kill-after=10 "$t" "$@" > "$OUT/$name.log" 2>&1
    local rc=$?
    quiet < "$OUT/$name.log" | tail -${TAIL:-20}
    echo "exit $rc$( ((rc == 124 || rc == 137)) && echo ' (timed out)')"
}
if [[ -n $QUICK ]]; then
    PACK=(--quick) IMNET=(--quick --steps 2 --warmup 1 --repeats 1) INF=(--quick --time-budget 20) TESTS=(-k cuda)
else
    PACK=(--steps 50 --warmup 10 --repeats 2) IMNET=(--steps 20 --warmup 5 --repeats 1) INF=(--images 4096 --calib 2048 --batch-size 512 --latency-images 100 --compile --time-budget 85) TESTS=()
fi

step machine
if [[ $DEV == cuda* ]]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
    card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
else
    card=$($PY -c "from machine_info import cpu_model; print(cpu_model())" 2>/dev/null || echo cpu)
fi
echo "cpus: $(nproc)"
$PY -c "import torch; print('torch', torch.__version__)"
{ echo "date=$(date -u +%F)"; echo "device=$DEV"; echo "card=$card"; } > "$OUT/machine.txt"

if want a; then
step "a. early-exit inference benchmark and its tests"
# the engine's CUDA-graph tests first (~30 s): replayed graphs equal eager, decisions equal the host
TAIL=8 run test_fast_exit 75 30 $PY -m pytest -q -x -p no:cacheprovider "${TESTS[@]}" tests/test_fast_exit.py
# then batch 512 over budgets (fast engine, reference path, full evaluation eager / CUDA-graphed /
# compiled) and batch 1 per-exit latency against MAC shares; each table prints when done
TAIL=45 run bench_inference 120 60 $PY benchmarks/bench_inference.py --device "$DEV" "${INF[@]}" \
    --csv "$OUT/bench_inference.csv"
fi

if want b; then
step "b. packing: k = 1, 2, 4 concurrent CIFAR-100 MSDNet trainings, no MPS"
run bench_packing 170 60 $PY benchmarks/bench_packing.py --device "$DEV" --config msdnet-anytime-cifar100 \
    --ks 1,2,4 --mps off "${PACK[@]}" --out "$OUT" --stem bench_packing
fi

if want c; then
step "c. ImageNet MSDNet (k=4) and ResNet-50, 224x224, batch 256"
TAIL=8 run bench_imagenet_eager 100 40 $PY benchmarks/bench_train.py --device "$DEV" \
    --configs msdnet-imagenet-k4,resnet50-imagenet --variants fast "${IMNET[@]}" --out "$OUT" --stem bench_train-imagenet-eager
if [[ $DEV == cuda* ]]; then
    TAIL=8 run bench_imagenet_graphs 150 70 $PY benchmarks/bench_train.py --device "$DEV" \
        --configs msdnet-imagenet-k4,resnet50-imagenet --variants fast_graphs "${IMNET[@]}" --out "$OUT" \
        --stem bench_train-imagenet-graphs
fi
fi

if want mps; then
step "mps. packing under CUDA MPS"
if [[ $DEV == cuda* ]] && command -v nvidia-cuda-mps-control > /dev/null; then
    run bench_packing_mps 150 90 $PY benchmarks/bench_packing.py --device "$DEV" --config msdnet-anytime-cifar100 \
        --ks 1,2,4 --mps on "${PACK[@]}" --out "$OUT" --stem bench_packing-mps
else
    echo "skipped: no CUDA device or no nvidia-cuda-mps-control"
fi
fi

if want e; then
step "e. CUDA training tests (fast path, data pipeline)"
TAIL=10 run tests_cuda 90 40 $PY -m pytest -q -x -p no:cacheprovider "${TESTS[@]}" tests/test_speed.py \
    "tests/test_data.py::test_device_batches_equal_textbook_augment_then_normalise" \
    "tests/test_data.py::test_cuda_batches_equal_cpu_batches"
fi

if want d; then
step "d. GPU-hours table from this session's CSVs"
if [[ $DEV == cuda* ]]; then base=docs/benchmarks/bench_train-cuda-h100.csv; else base=docs/benchmarks/bench_train-cpu-xeon-2core.csv; fi
csvs=$base
for f in "$OUT"/bench_train-imagenet-eager.csv "$OUT"/bench_train-imagenet-graphs.csv; do [[ -f $f ]] && csvs+=",$f"; done
packs=$(ls "$OUT"/bench_packing*.csv 2>/dev/null | paste -sd, -)
RESERVE=0 TAIL=30 run gpu_hours 25 5 $PY benchmarks/bench_train.py --from-csv "$csvs" \
    ${packs:+--packing "$packs"} --out "$OUT" --stem gpu_hours
fi
step done
ls -l "$OUT"
