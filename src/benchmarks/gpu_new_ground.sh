#!/usr/bin/env bash
# The networks for new ground at GPU scale, on one GPU, on any data folder (the shared sample):
#
#   bash src/benchmarks/gpu_new_ground.sh DATA WORK
#
# Trains, at once on the one GPU (small models leave it mostly idle), each network under the
# full-gpu profile (whole patches, 30 epochs, bf16, 8-view TTA) from scratch, with and without
# the shift test's changes on half the crops (augment.shift), plus the sample-cpu network at 60
# epochs and with an EMA of its weights (measured before train.ema was warmed up); then blends
# each alone (a temperature and a floor, src/blend.py) and runs the shift test over those
# blends (src/benchmarks/shift_test.py, one view; about 70 s a column for four networks on the
# H200's 16 CPU cores, before the shift test took --device and predicted on the GPU).
# What comes out, under WORK: oof/<name>/ (OOF and test predictions, scores, histories),
# sub/<name>.json, shift.json, and one log per step.
# DEVICE=cpu EXTRA="train.epochs=1 train.steps_per_epoch=1 predict.tta=1" on a small generated
# data folder makes a dry run without a GPU.
set -uo pipefail
DATA=${1:?usage: gpu_new_ground.sh DATA WORK}
WORK=${2:?usage: gpu_new_ground.sh DATA WORK}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
THREADS=${THREADS:-2}
read -r -a EXTRA <<<"${EXTRA:-}"
mkdir -p "$WORK/sub"
WORK=$(cd "$WORK" && pwd)
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1

step() { echo; echo "== $1 ($(date -u +%H:%M:%S))"; }
step "prepare"
"$PY" src/prepare.py --data "$DATA" --profile full-gpu | tail -1

# name, model file, then --set overrides (augment.shift named where the model file leaves it:
# full-gpu sets 0.5). Pretrained weights off: this measures training.
NETS=(
    "unet_resnet18 unet_resnet18 augment.shift=0"
    "unet_resnet18_shifted unet_resnet18 augment.shift=0.5"
    "unet_regnety_002 unet_regnety_002 augment.shift=0"
    "unet_regnety_002_shifted unet_regnety_002_shifted"
    "unet_regnety_002_shifted_e60 unet_regnety_002_shifted train.epochs=60"
    "unet_regnety_002_shifted_ema unet_regnety_002_shifted train.ema=0.99"
)
step "train ${#NETS[@]} networks at once"
for spec in "${NETS[@]}"; do
    read -r -a a <<<"$spec"
    (
        SECONDS=0
        "$PY" src/train.py --config "${a[1]}" --data "$DATA" --profile full-gpu \
            --oof-dir "$WORK/oof" --set "experiment=${a[0]}" model.pretrained=null \
            normalize.scale=0 "run.device=$DEVICE" "run.threads=$THREADS" "${a[@]:2}" \
            "${EXTRA[@]}" >"$WORK/train_${a[0]}.log" 2>&1
        echo "${a[0]}: exit $? after ${SECONDS} s; $(tail -c 300 "$WORK/train_${a[0]}.log" \
            | tr '\r' '\n' | tail -1)"
    ) &
done
wait

step "blend each alone"
names=()
for spec in "${NETS[@]}"; do
    read -r -a a <<<"$spec"
    [ -f "$WORK/oof/${a[0]}/scores.json" ] || continue
    names+=("${a[0]}")
    ("$PY" src/blend.py --oof-dir "$WORK/oof" --experiments "${a[0]}" --trials 100 \
        --out "$WORK/sub/${a[0]}.csv" >"$WORK/blend_${a[0]}.log" 2>&1
     echo "${a[0]}: blend exit $?") &
done
wait
for n in "${names[@]}"; do
    echo "$n OOF $(cat "$WORK/oof/$n/scores.json")"
done

step "shift test (one view)"
sidecars=()
for n in "${names[@]}"; do [ -f "$WORK/sub/$n.json" ] && sidecars+=("$WORK/sub/$n.json"); done
"$PY" src/benchmarks/shift_test.py "${sidecars[@]}" --device "$DEVICE" --threads 8 \
    --json "$WORK/shift.json" \
    2>&1 | tr '\r' '\n' | grep -v "^ *$" | tail -20
step "done"
