#!/usr/bin/env bash
# The README's GPU figures in one go, on a machine with one GPU and the project's packages:
#
#   bash src/benchmarks/gpu_figures.sh WORK [N_TRAIN | full]
#
# 1. speed.py model: training and inference images/s per backbone on synthetic 256 px batches;
# 2. a generated dataset in the official layout (make_demo_data.py), prepared: N_TRAIN train
#    patches (default 250, the generator's small mode) or, with 'full', the real size;
# 3. speed.py loader: the real batch builder against a batch already on the GPU;
# 4. unet_resnet18 under the full-gpu profile, fold 0, 2 epochs (the first warms up): seconds
#    per epoch from its history.csv, and the OOF/test prediction time at 8 views.
# Everything goes under WORK (a few GB); each step's output is printed and kept in WORK/*.txt.
# DEVICE=cpu SIZE=64 N_TEST=10 MODELS=classifier_resnet18 make a quick dry run without a GPU.
set -euo pipefail
WORK=${1:?usage: gpu_figures.sh WORK [N_TRAIN]}
N_TRAIN=${2:-250}
N_TEST=${N_TEST:-50}
SIZE=${SIZE:-256}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
mkdir -p "$WORK"
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1

step() { echo; echo "== $1 ($(date -u +%H:%M:%S))"; }
step "device"
if [ "$DEVICE" = cuda ]; then nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cpu cores', torch.get_num_threads())"

if [ -z "${SKIP_MODEL_SPEED:-}" ]; then
    step "speed.py model (synthetic batches of 32 x ${SIZE} px)"
    "$PY" src/benchmarks/speed.py model --device "$DEVICE" --batch 32 --size "$SIZE" --steps 10 \
        ${MODELS:+--models "$MODELS"} | tee "$WORK/model_speed.txt"
fi

step "generate ${N_TRAIN} + ${N_TEST} patches of ${SIZE} px and prepare them"
SECONDS=0
if [ "$N_TRAIN" = full ]; then  # the real dataset's size: 18,491 + 5,043 patches (13.6 GB)
    "$PY" src/make_demo_data.py "$WORK/data" --full-size | tail -1
else  # the generator's small mode (at most 20 M pixels)
    "$PY" src/make_demo_data.py "$WORK/data" --n-train "$N_TRAIN" --n-test "$N_TEST" \
        --size "$SIZE" | tail -1
fi
echo "generate: ${SECONDS} s"
SECONDS=0
"$PY" src/prepare.py --data "$WORK/data" | tail -1
echo "prepare: ${SECONDS} s"

step "speed.py loader (whole patches, batch 32)"
"$PY" src/benchmarks/speed.py loader --data "$WORK/data" --device "$DEVICE" --batch 32 --crop 0 \
    --models "${MODELS:-unet_resnet18,fpn_efficientnet_b0,unet_convnext_atto,classifier_resnet18}" \
    | tee "$WORK/loader_speed.txt"

step "unet_resnet18, full-gpu profile, fold 0, 2 epochs"
SECONDS=0
"$PY" src/train.py --experiments unet_resnet18 --data "$WORK/data" --profile full-gpu --folds 0 \
    --artifacts "$WORK" --set train.epochs=2 "run.device=$DEVICE" 2>&1 | tr '\r' '\n' \
    | grep -v "| epoch" | tail -5
echo "fold 0 in all: ${SECONDS} s"
find "$WORK/oof" -name history.csv -exec cat {} \;
