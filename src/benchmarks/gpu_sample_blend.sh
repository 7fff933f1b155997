#!/usr/bin/env bash
# The sample-gpu blend on one GPU, end to end, and its shift test:
#
#   bash src/benchmarks/gpu_sample_blend.sh DATA WORK
#
# Trains the sample-gpu profile's members at once (configs/profiles/sample-gpu.yaml): the
# network for new ground on the GPU (whole patches, 60 epochs), pixel_lightgbm_shifted on the
# CPU cores, and beside them the network's in-region twin (unet_regnety_002, the same settings
# without augment.shift) for the shift augmentation's cost at convergence. Then blends the
# profile's members (src/blend.py), the twin with the LightGBM member for comparison, and runs
# the shift test over the profile's blend, a change drawn once a fold (--per-region 1) and
# once a patch (src/benchmarks/shift_test.py, one view, the networks on the GPU).
# What comes out, under WORK: oof/<name>/, sub/<blend>.csv and .json, shift_region.json,
# shift_patch.json, one log per step; the key figures are printed.
# TWIN=0 leaves the in-region twin out (the GPU then trains the profile's network alone).
# DEVICE=cpu EXTRA="train.epochs=1 train.steps_per_epoch=1 predict.tta=1" on a small generated
# data folder makes a dry run without a GPU.
set -uo pipefail
DATA=${1:?usage: gpu_sample_blend.sh DATA WORK}
WORK=${2:?usage: gpu_sample_blend.sh DATA WORK}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
TWIN=${TWIN:-1}
# cores for the LightGBM member while the networks train; half of them for each shift test
GBM_THREADS=${GBM_THREADS:-12}
read -r -a EXTRA <<<"${EXTRA:-}"
mkdir -p "$WORK/sub"
WORK=$(cd "$WORK" && pwd)
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1

step() { echo; echo "== $1 ($(date -u +%H:%M:%S))"; }
train() {  # name, then --set overrides
    local name=$1; shift
    SECONDS=0
    "$PY" src/train.py --config "$name" --data "$DATA" --profile sample-gpu \
        --oof-dir "$WORK/oof" --set "run.device=$DEVICE" "$@" "${EXTRA[@]}" \
        >"$WORK/train_$name.log" 2>&1
    echo "$name: exit $? after ${SECONDS} s; $(tail -c 300 "$WORK/train_$name.log" \
        | tr '\r' '\n' | tail -1)"
}
blend() {  # out name, experiments
    "$PY" src/blend.py --oof-dir "$WORK/oof" --experiments "$2" --out "$WORK/sub/$1.csv" \
        >"$WORK/blend_$1.log" 2>&1
    echo "$1 ($2): blend exit $?"; sed -n '/^model/,$p' "$WORK/blend_$1.log"
}
shift_test() {  # json name, then flags
    local name=$1; shift
    SECONDS=0
    "$PY" src/benchmarks/shift_test.py "$WORK/sub/sample_gpu.json" --device "$DEVICE" \
        --threads $(( (GBM_THREADS + 1) / 2 )) --gbm-stride 8 --json "$WORK/$name.json" "$@" \
        2>&1 | tr '\r' '\n' | grep -v "^ *$" | tail -6
    echo "$name: ${SECONDS} s"
}

step "prepare"
"$PY" src/prepare.py --data "$DATA" --profile sample-gpu | tail -1

step "train the networks on the GPU and the LightGBM member on $GBM_THREADS cores, at once"
train unet_regnety_002_shifted "run.threads=2" &
[[ $TWIN == 1 ]] && train unet_regnety_002 "run.threads=2" &
train pixel_lightgbm_shifted "run.threads=$GBM_THREADS" &
wait
for n in unet_regnety_002_shifted pixel_lightgbm_shifted $([[ $TWIN == 1 ]] && echo unet_regnety_002); do
    echo "$n OOF $(cat "$WORK/oof/$n/scores.json" 2>/dev/null)"
done

step "blend (both at once)"
blend sample_gpu unet_regnety_002_shifted,pixel_lightgbm_shifted >"$WORK/blend_sample_gpu.txt" &
[[ $TWIN == 1 ]] && blend in_region_twin unet_regnety_002,pixel_lightgbm_shifted \
    >"$WORK/blend_in_region_twin.txt" &
wait
cat "$WORK/blend_sample_gpu.txt" "$WORK/blend_in_region_twin.txt" 2>/dev/null

step "shift test, a change once a fold and once a patch (both at once)"
shift_test shift_region --per-region 1 >"$WORK/shift_region.txt" &
shift_test shift_patch >"$WORK/shift_patch.txt" &
wait
cat "$WORK/shift_region.txt" "$WORK/shift_patch.txt"
step "done"
