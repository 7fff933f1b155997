#!/usr/bin/env bash
# The whole pipeline: data -> validation, cache and folds -> one training notebook per
# experiment (k-fold CV, OOF and test predictions) -> Optuna blend -> shift tests -> summary.
#
#   ./run_all.sh                                     generated demo dataset, demo profile
#   ./run_all.sh --data DIR                          real data: full-gpu on a GPU, else sample-cpu
#   ./run_all.sh --data DIR --profile sample-cpu     a profile by name
#   ./run_all.sh --data DIR --dry-run                the resolved plan and its time estimate
#
# Options: --experiments a,b (default: the profile's), --set KEY=VALUE [KEY=VALUE ...] (config
# overrides for every experiment, repeatable), --artifacts DIR (experiments in DIR/oof,
# submissions in DIR/submissions, executed notebooks in DIR/notebooks/runs; default: here for
# real data, demo/ for the demo), --force (redo finished experiments), --trials N (the blend's
# Optuna trials, 200), --no-shift-test, --engine ray [--address auto|host:port] (every fold a
# Ray task), --cpu-beside / --no-cpu-beside (CPU-only members train beside the networks;
# default: on when the networks train on a GPU), --smoke (a tiny demo with 1-epoch models:
# what CI runs), --dry-run.
# The run ends with a summary (members, blend, shift tests, time per stage); its last line is
# the submission's path.
set -euo pipefail
cd "$(dirname "$0")"

data="" profile="" experiments="" force=false smoke=false trials=200 sets=()
engine=local address="" beside=auto artifacts="" dry_run=false shift_test=true
value() {  # the value of option $1, which must follow it
    [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || {
        echo "error: option $1 needs a value (see ./run_all.sh --help)" >&2; exit 2; }
}
while [[ $# -gt 0 ]]; do
    case "$1" in
        --data) value "$@"; data="$2"; shift 2 ;;
        --profile) value "$@"; profile="$2"; shift 2 ;;
        --experiments) value "$@"; experiments="$2"; shift 2 ;;
        --trials) value "$@"; trials="$2"; shift 2 ;;
        --set) value "$@"; shift
            while [[ $# -gt 0 && "$1" != --* ]]; do sets+=("$1"); shift; done ;;
        --engine) value "$@"; engine="$2"; shift 2 ;;
        --address) value "$@"; address="$2"; shift 2 ;;
        --artifacts) value "$@"; artifacts="$2"; shift 2 ;;
        --cpu-beside) beside=true; shift ;;
        --no-cpu-beside) beside=false; shift ;;
        --no-shift-test) shift_test=false; shift ;;
        --force) force=true; shift ;;
        --smoke) smoke=true; shift ;;
        --dry-run) dry_run=true; shift ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown option '$1' (see ./run_all.sh --help)" >&2; exit 2 ;;
    esac
done
[[ "$engine" == local || "$engine" == ray ]] || {
    echo "error: --engine must be local or ray, got '$engine'" >&2; exit 2; }
[[ "$trials" =~ ^[1-9][0-9]*$ ]] || {
    echo "error: --trials must be a positive integer, got '$trials'" >&2; exit 2; }
if [[ -n "$data" && ! -d "$data" ]]; then
    echo "error: data folder not found: $data" >&2; exit 2
fi

py_bool() { if "$1"; then echo True; else echo False; fi; }  # papermill reads True/False
started=$SECONDS
current_stage="setup" stage_log=""
stage() {
    current_stage="$1"
    printf '\n==> [%4ds] %s\n' "$((SECONDS - started))" "$1"
    [[ -z "$stage_log" ]] || printf '%d\t%s\n' "$((SECONDS - started))" "$1" >> "$stage_log"
}
trap 'echo "run_all.sh: FAILED at stage: $current_stage (after $((SECONDS - started)) s)" >&2' ERR

stage "environment (.venv)"
source src/ensure_venv.sh

if [[ -z "$data" ]]; then
    profile="${profile:-demo}"
elif [[ -z "$profile" ]]; then  # by hardware, said aloud
    if python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        profile=full-gpu why="a CUDA GPU is here"
    else
        profile=sample-cpu why="no CUDA GPU here"
    fi
    echo "profile: $profile ($why; --profile NAME chooses another)"
fi
smoke_flag=()
$smoke && smoke_flag=(--smoke)

stage "check the profile and the experiments' configs"
checked="$(python src/train.py --check --profile "$profile" ${experiments:+--experiments "$experiments"} \
    ${smoke_flag[@]+"${smoke_flag[@]}"} ${sets[@]+--set "${sets[@]}"})"
experiments="$(sed -n 1p <<< "$checked")" cpu_members="$(sed -n 2p <<< "$checked")"
network_device="$(sed -n 3p <<< "$checked")"
read -r map_rows map_cols map_overlap <<< "$(sed -n 4p <<< "$checked")"  # the profile's map
if [[ "$network_device" == cpu ]] && python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "warning: a CUDA GPU is here, but profile $profile trains its networks on the CPU"
fi
if [[ "$beside" == auto ]]; then
    beside=false
    [[ "$network_device" == cuda && "$engine" == local ]] && beside=true
fi

if [[ -z "$data" ]]; then
    workspace="demo" root="demo" data="demo/data"
    if $smoke; then root="demo/smoke" data="demo/smoke/data"; fi
else
    workspace="$(basename "$(cd "$data" && pwd)")" root="."
fi
artifacts="${artifacts:-$root}"
oof_dir="$artifacts/oof" submissions="$artifacts/submissions" runs="$artifacts/notebooks/runs"
echo "data: $data | profile: $profile | networks on: $network_device | experiments: $experiments"
echo "artifacts: $oof_dir/  $submissions/  $runs/"

if $dry_run; then
    stage "the plan (nothing is run)"
    python src/benchmarks/speed.py plan --profile "$profile" --experiments "$experiments" \
        ${data:+--data "$data"} ${smoke_flag[@]+"${smoke_flag[@]}"} ${sets[@]+--set "${sets[@]}"}
    exit 0
fi
mkdir -p "$oof_dir" "$submissions" "$runs"
stage_log="$runs/stages.tsv"
printf '0\tset-up: environment and config checks\n' > "$stage_log"

if [[ ! -f "$data/train_labels.csv" && "$data" == demo/* ]]; then
    stage "generate the demo dataset ($data)"
    if $smoke; then
        python src/make_demo_data.py "$data" --n-train 40 --n-test 8 --size 32
    else
        python src/make_demo_data.py "$data"
    fi
fi

stage "validate, cache and split the data"
data_sets=()
for item in ${sets[@]+"${sets[@]}"}; do [[ "$item" == data.* ]] && data_sets+=("$item"); done
python src/prepare.py --data "$data" --profile "$profile" \
    ${data_sets[@]+--set "${data_sets[@]}"}

if [[ ! -f "$runs/eda.ipynb" ]] || $force; then
    stage "explore the data (notebooks/eda.ipynb -> $runs/eda.ipynb)"
    papermill --log-level ERROR notebooks/eda.ipynb "$runs/eda.ipynb" \
        -p data_dir "$data" -p smoke "$(py_bool $smoke)"
fi

notebook() {  # run notebooks/train.ipynb for one experiment (it trains, or shows it if done)
    papermill --log-level ERROR notebooks/train.ipynb "$runs/$1.ipynb" \
        -p experiment "$1" -p data_dir "$data" -p profile "$profile" \
        -p oof_dir "$oof_dir" -p smoke "$(py_bool $smoke)" -p force "$(py_bool $force)" \
        -p overrides "${sets[*]+${sets[*]}}"
}
complete() {  # whether experiment $1 is already complete for this data and config
    [[ "$(python src/train.py --experiments "$1" --data "$data" --profile "$profile" \
        --artifacts "$artifacts" ${smoke_flag[@]+"${smoke_flag[@]}"} \
        ${sets[@]+--set "${sets[@]}"} --status | tail -1)" == complete ]] && ! $force
}
train() {  # train experiment $1 through its notebook, unless complete
    current_stage="train $1 (status check)"
    if complete "$1"; then
        stage "train $1: already complete for this data and config, skipped"
    else
        stage "train $1 (notebooks/train.ipynb -> $runs/$1.ipynb)"
        notebook "$1"
    fi
}
IFS=',' read -ra names <<< "$experiments"
IFS=',' read -ra beside_names <<< "$($beside && echo "$cpu_members")"
if [[ "$engine" == ray ]]; then
    fresh=()
    for name in "${names[@]}"; do complete "$name" || fresh+=("$name"); done
    stage "train every fold as a Ray task (src/train.py --engine ray${address:+ --address $address})"
    force_flag=()
    $force && force_flag=(--force)
    python src/train.py --experiments "$experiments" --engine ray ${address:+--address "$address"} \
        --data "$data" --profile "$profile" --artifacts "$artifacts" \
        ${smoke_flag[@]+"${smoke_flag[@]}"} ${force_flag[@]+"${force_flag[@]}"} \
        ${sets[@]+--set "${sets[@]}"}
    for name in ${fresh[@]+"${fresh[@]}"}; do
        stage "show $name (notebooks/train.ipynb -> $runs/$name.ipynb)"
        notebook "$name"
    done
else
    pids=() jobs=()
    for name in ${beside_names[@]+"${beside_names[@]}"}; do  # CPU-only members, in the background
        stage "train $name beside the GPU experiments (log: $runs/$name.log)"
        ( train "$name" ) > "$runs/$name.log" 2>&1 &
        pids+=($!) jobs+=("$name")
    done
    for name in "${names[@]}"; do
        [[ " ${jobs[*]-} " == *" $name "* ]] || train "$name"
    done
    for i in "${!pids[@]}"; do
        current_stage="train ${jobs[$i]} beside the GPU experiments (log: $runs/${jobs[$i]}.log)"
        wait "${pids[$i]}"
        stage "${jobs[$i]} (beside) finished"
    done
fi

stage "blend the experiments (src/blend.py)"
out="$submissions/blend-$(date -u +%Y%m%d-%H%M%S).csv"
$smoke && trials=20
python src/blend.py --artifacts "$artifacts" --experiments "$experiments" --trials "$trials" \
    --out "$out" > "$runs/blend.log"
sidecar="${out%.csv}.json"

stage "inspect the blend (notebooks/blend.ipynb -> $runs/blend.ipynb)"
papermill --log-level ERROR notebooks/blend.ipynb "$runs/blend.ipynb" \
    -p submission "$sidecar" -p smoke "$(py_bool $smoke)"

stage "map a $map_rows x $map_cols mosaic of neighbouring tiles (notebooks/predict.ipynb -> $runs/predict.ipynb)"
papermill --log-level ERROR notebooks/predict.ipynb "$runs/predict.ipynb" \
    -p submission "$sidecar" -p data_dir "$data" -p out_dir "$runs" \
    -p rows "$map_rows" -p cols "$map_cols" -p overlap "$map_overlap" -p smoke "$(py_bool $smoke)"

shift_json=""
if $shift_test; then
    stage "shift tests: radiometry and class mix (src/shift_test.py -> $runs/shift.log)"
    shift_json="${sidecar%.json}.shift.json"  # beside the sidecar: its model card reads it
    smoke_shift=()
    $smoke && smoke_shift=(--shifts none,gain --band-rows 1 --region-min 5 --trials 5)
    python src/shift_test.py "$sidecar" --profile "$profile" --json "$shift_json" \
        ${smoke_shift[@]+"${smoke_shift[@]}"} > "$runs/shift.log"
    python src/export.py --model "$sidecar" --card-only > /dev/null  # the card with its figures
fi

stage "check the submission (src/score.py --check-submission)"
python src/score.py --check-submission "$out" --data "$data"

printf '%d\tdone\n' "$((SECONDS - started))" >> "$stage_log"
printf '\n==> [%4ds] done (%s, profile %s)\n\n' "$((SECONDS - started))" "$workspace" "$profile"
python src/summary.py "$sidecar" ${shift_json:+--shift "$shift_json"} --stages "$stage_log"
echo
echo "$out"
