#!/usr/bin/env bash
# One GPU session's checks, in priority order, for a machine whose python3 already has PyTorch
# (the package runs from src/, nothing is installed). Everything lands in $OUT (default
# results/gpu_check/): the benchmark tables, the test log, the machine. Each step has its own
# time limit, so a slow compile cannot eat the later steps.
#
#     bash benchmarks/gpu_check.sh [STEP ...]    # default: all five; about 10 minutes
#
# 1. bench_train on the CIFAR-100 anytime MSDNet: plain vs fast (eager) and fast_graphs
#    (compiled + CUDA graphs) -- the >= 3x target.
# 2. The fast-path tests on the GPU (tests/test_speed.py: the digits loss curves of the fast
#    path against the plain one run on CUDA there, the bf16 step test, the CUDA policy test)
#    and the data pipeline's CUDA equivalence test.
# 3. msdnet train end to end on CUDA with compile_mode reduce-overhead (a short last batch,
#    evaluation, checkpoint) on the tiny digits MSDNet.
# 4. bench_train on ResNet-110, DenseNet-BC-100 and the other MSDNets (as time allows).
# 5. bench_inference on CUDA (early exit against full evaluation).
set -u
OUT=${OUT:-results/gpu_check}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MSDNET_NO_DOWNLOAD=1
PY=${PYTHON:-python3}
TMP=$(mktemp -d)
exec > >(tee "$OUT/gpu_check.log") 2>&1          # the whole story in one file
STEPS=" ${*:-1 2 3 4 5} "
want() { [[ $STEPS == *" $1 "* ]]; }
step() { echo; echo "=== $* ($(date +%T), ${SECONDS}s)"; }
quiet() { grep -v "^W1[0-9]\{3\} \|^ *warnings.warn\|UserWarning" || true; }

step machine
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
echo "cpus: $(nproc)"
$PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"

if want 1; then
step "1. bench_train msdnet-anytime-cifar100"
timeout 210 $PY benchmarks/bench_train.py --device cuda --configs msdnet-anytime-cifar100 \
    --variants fast,fast_graphs --steps 50 --warmup 10 --repeats 3 --out "$TMP/msdnet" \
    > "$OUT/bench_msdnet.log" 2>&1
echo "exit $?"; quiet < "$OUT/bench_msdnet.log" | tail -25
cp "$TMP"/msdnet/*.csv "$OUT/bench_train-msdnet.csv" 2>/dev/null
fi

if want 2; then
step "2. tests on CUDA"
timeout 90 $PY -m pytest -q -x -p no:cacheprovider tests/test_speed.py \
    "tests/test_data.py::test_device_batches_equal_textbook_augment_then_normalise" \
    "tests/test_data.py::test_cuda_batches_equal_cpu_batches" 2>&1 | tail -15
fi

if want 3; then
step "3. msdnet train on CUDA: plain, fast, fast + CUDA graphs"
timeout 100 $PY benchmarks/gpu_train_check.py --epochs 4 --out "$TMP/train_check" 2>&1 | quiet | tail -14
fi

if want 4; then
step "4. bench_train, other configs"
timeout 200 $PY benchmarks/bench_train.py --device cuda --budget-s ${BUDGET4:-100} \
    --configs resnet110-cifar100,densenet-bc-100-k12-cifar100,msdnet-budgeted-b4-cifar100,msdnet-imagenet-k4 \
    --variants fast,fast_graphs --steps 30 --warmup 5 --repeats 2 --out "$TMP/others" \
    > "$OUT/bench_others.log" 2>&1
echo "exit $?"; quiet < "$OUT/bench_others.log" | grep "^config=\|budget\|Error\|error" | tail -10
cp "$TMP"/others/*.csv "$OUT/bench_train-others.csv" 2>/dev/null
fi

if want 5; then
step "5. bench_inference on CUDA"
timeout 60 $PY benchmarks/bench_inference.py --device cuda --images 4096 --calib 2048 --batch-size 512 2>&1 | quiet | tail -12
fi
step done
