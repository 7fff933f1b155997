#!/usr/bin/env bash
# The whole pipeline: data -> validation, cache and folds -> one training notebook per
# experiment (k-fold CV, OOF and test predictions) -> Optuna blend -> submission.
#
#   ./run_all.sh                                     generated demo dataset, demo profile
#   ./run_all.sh --data DIR --profile sample-cpu     the shared real sample on a CPU
#   ./run_all.sh --data DIR --profile full-gpu       the full dataset on one GPU
#
# Options: --experiments a,b (default: the profile's), --force (redo finished experiments),
# --trials N (blend, default 200), --set KEY=VALUE (a config override for every experiment,
# repeatable: --set data.buffer_rows=0), --smoke (tiny demo, 1-epoch models: what CI runs),
# --engine ray [--address auto|host:port] (every fold a Ray task; default: local, in turn),
# --cpu-beside / --no-cpu-beside (CPU-only members train beside the networks; default: on
# when the networks train on a GPU), --artifacts DIR (DIR/oof, DIR/submissions, DIR/runs
# instead of the folders below).
# Demo artifacts go to oof/demo, submissions/demo and notebooks/runs/demo; real runs to oof/,
# submissions/ and notebooks/runs/. The last line printed is the submission's path.
set -euo pipefail
cd "$(dirname "$0")"

data="" profile="" experiments="" force=false smoke=false trials=200 sets=()
engine=local address="" beside=auto artifacts=""
value() {  # the value of option $1, which must follow it
    [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || {
        echo "run_all.sh: error: option $1 needs a value (see --help)" >&2; exit 2; }
}
while [[ $# -gt 0 ]]; do
    case "$1" in
        --data) value "$@"; data="$2"; shift 2 ;;
        --profile) value "$@"; profile="$2"; shift 2 ;;
        --experiments) value "$@"; experiments="$2"; shift 2 ;;
        --trials) value "$@"; trials="$2"; shift 2 ;;
        --set) value "$@"; sets+=("$2"); shift 2 ;;
        --engine) value "$@"; engine="$2"; shift 2 ;;
        --address) value "$@"; address="$2"; shift 2 ;;
        --artifacts) value "$@"; artifacts="$2"; shift 2 ;;
        --cpu-beside) beside=true; shift ;;
        --no-cpu-beside) beside=false; shift ;;
        --force) force=true; shift ;;
        --smoke) smoke=true; shift ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run_all.sh: error: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

py_bool() { if "$1"; then echo True; else echo False; fi; }  # papermill reads True/False

started=$SECONDS start_time=$(date +%s)
current_stage="setup"
stage() {
    current_stage="$1"
    printf '\n==> [%4ds] %s\n' "$((SECONDS - started))" "$1"
}
trap 'echo "run_all.sh: FAILED at stage: $current_stage (after $((SECONDS - started)) s)" >&2' ERR

stage "environment (.venv)"
source src/ensure_venv.sh

[[ "$engine" == local || "$engine" == ray ]] || {
    echo "run_all.sh: error: --engine must be local or ray, got '$engine'" >&2; exit 2; }
[[ "$trials" =~ ^[1-9][0-9]*$ ]] || {
    echo "run_all.sh: error: --trials must be a positive integer, got '$trials'" >&2; exit 2; }
if [[ -n "$data" && ! -d "$data" ]]; then
    echo "run_all.sh: error: data folder not found: $data" >&2; exit 2
fi
[[ -n "$data" ]] || profile="${profile:-demo}"
profile="${profile:-sample-cpu}"
smoke_flag=()
$smoke && smoke_flag=(--smoke)

stage "check the profile and the experiments' configs"
checked="$(python src/train.py --check "$experiments" --profile "$profile" \
    ${smoke_flag[@]+"${smoke_flag[@]}"} ${sets[@]+--set "${sets[@]}"})"
experiments="$(sed -n 1p <<< "$checked")" cpu_members="$(sed -n 2p <<< "$checked")"
read -r map_rows map_cols map_overlap <<< "$(sed -n 4p <<< "$checked")"  # the profile's map
if [[ "$beside" == auto ]]; then
    beside=false
    [[ "$(sed -n 3p <<< "$checked")" == cuda && "$engine" == local ]] && beside=true
fi

if [[ -z "$data" ]]; then
    workspace="demo"
    data="demo/data"
    oof_dir="oof/demo" submissions="submissions/demo" runs="notebooks/runs/demo"
    if $smoke; then
        data="demo/smoke-data" oof_dir="oof/demo-smoke" submissions="submissions/demo-smoke"
        runs="notebooks/runs/demo-smoke"
    fi
    if [[ ! -f "$data/train_labels.csv" || ! -f "$data/grid.json" ]]; then  # grid.json: newer
        stage "generate the demo dataset ($data)"
        if $smoke; then
            python src/make_demo_data.py "$data" --n-train 40 --n-test 8 --size 32
        else
            python src/make_demo_data.py "$data"
        fi
    fi
else
    workspace="$(basename "$(cd "$data" && pwd)")"
    oof_dir="oof" submissions="submissions" runs="notebooks/runs"
fi
if [[ -n "$artifacts" ]]; then
    oof_dir="$artifacts/oof" submissions="$artifacts/submissions" runs="$artifacts/runs"
fi
echo "data: $data | profile: $profile | experiments: $experiments"
echo "artifacts: $oof_dir/  $submissions/  $runs/"
mkdir -p "$oof_dir" "$submissions" "$runs"

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
    [[ "$(python src/train.py --config "$1" --data "$data" --profile "$profile" \
        --oof-dir "$oof_dir" ${smoke_flag[@]+"${smoke_flag[@]}"} \
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
    python src/train.py --config "$experiments" --engine ray ${address:+--address "$address"} \
        --data "$data" --profile "$profile" --oof-dir "$oof_dir" \
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
        ( train "$name"; date +%s > "$runs/.$name.finished" ) > "$runs/$name.log" 2>&1 &
        pids+=($!) jobs+=("$name")
    done
    for name in "${names[@]}"; do
        [[ " ${jobs[*]-} " == *" $name "* ]] || train "$name"
    done
    for i in "${!pids[@]}"; do
        current_stage="train ${jobs[$i]} beside the GPU experiments (log: $runs/${jobs[$i]}.log)"
        wait "${pids[$i]}"
        stage "${jobs[$i]} (beside) finished at $(( $(cat "$runs/.${jobs[$i]}.finished") - start_time )) s"
    done
fi

stage "blend the experiments (src/blend.py)"
out="$submissions/blend-$(date -u +%Y%m%d-%H%M%S).csv"
$smoke && trials=20
python src/blend.py --oof-dir "$oof_dir" --experiments "$experiments" --trials "$trials" \
    --out "$out" | tee "$runs/blend.log"

stage "inspect the blend (notebooks/blend.ipynb -> $runs/blend.ipynb)"
papermill --log-level ERROR notebooks/blend.ipynb "$runs/blend.ipynb" \
    -p submission "${out%.csv}.json" -p smoke "$(py_bool $smoke)"

stage "map a $map_rows x $map_cols mosaic of neighbouring tiles (notebooks/predict.ipynb -> $runs/predict.ipynb)"
papermill --log-level ERROR notebooks/predict.ipynb "$runs/predict.ipynb" \
    -p submission "${out%.csv}.json" -p data_dir "$data" -p out_dir "$runs" \
    -p rows "$map_rows" -p cols "$map_cols" -p overlap "$map_overlap" -p smoke "$(py_bool $smoke)"

stage "check the submission (src/score.py --check-submission)"
python src/score.py --check-submission "$out" --data "$data"

printf '\n==> [%4ds] done (%s)\n' "$((SECONDS - started))" "$workspace"
echo "$out"
