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
# repeatable: --set data.buffer_rows=0), --smoke (tiny demo, 1-epoch models: what CI runs).
# Demo artifacts go to oof/demo, submissions/demo and notebooks/runs/demo; real runs to oof/,
# submissions/ and notebooks/runs/. The last line printed is the submission's path.
set -euo pipefail
cd "$(dirname "$0")"

data="" profile="" experiments="" force=false smoke=false trials=200 sets=()
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
        --force) force=true; shift ;;
        --smoke) smoke=true; shift ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run_all.sh: error: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

py_bool() { if "$1"; then echo True; else echo False; fi; }  # papermill reads True/False

started=$SECONDS
current_stage="setup"
stage() {
    current_stage="$1"
    printf '\n==> [%4ds] %s\n' "$((SECONDS - started))" "$1"
}
trap 'echo "run_all.sh: FAILED at stage: $current_stage (after $((SECONDS - started)) s)" >&2' ERR

stage "environment (.venv)"
source src/ensure_venv.sh

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
experiments="$(python src/train.py --check "$experiments" --profile "$profile" \
    ${smoke_flag[@]+"${smoke_flag[@]}"} ${sets[@]+--set "${sets[@]}"})"

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

IFS=',' read -ra names <<< "$experiments"
for name in "${names[@]}"; do
    current_stage="train $name (status check)"
    state="$(python src/train.py --config "$name" --data "$data" --profile "$profile" \
        --oof-dir "$oof_dir" ${smoke_flag[@]+"${smoke_flag[@]}"} ${sets[@]+--set "${sets[@]}"} \
        --status | tail -1)"
    if [[ "$state" == "complete" ]] && ! $force; then
        stage "train $name: already complete for this data and config, skipped"
        continue
    fi
    stage "train $name (notebooks/train.ipynb -> $runs/$name.ipynb)"
    papermill --log-level ERROR notebooks/train.ipynb "$runs/$name.ipynb" \
        -p experiment "$name" -p data_dir "$data" -p profile "$profile" \
        -p oof_dir "$oof_dir" -p smoke "$(py_bool $smoke)" -p force "$(py_bool $force)" \
        -p overrides "${sets[*]+${sets[*]}}"
done

stage "blend the experiments (src/blend.py)"
out="$submissions/blend-$(date -u +%Y%m%d-%H%M%S).csv"
$smoke && trials=20
python src/blend.py --oof-dir "$oof_dir" --experiments "$experiments" --trials "$trials" \
    --out "$out" | tee "$runs/blend.log"

stage "inspect the blend (notebooks/blend.ipynb -> $runs/blend.ipynb)"
papermill --log-level ERROR notebooks/blend.ipynb "$runs/blend.ipynb" \
    -p submission "${out%.csv}.json" -p smoke "$(py_bool $smoke)"

stage "map a mosaic of neighbouring tiles (notebooks/predict.ipynb -> $runs/predict.ipynb)"
papermill --log-level ERROR notebooks/predict.ipynb "$runs/predict.ipynb" \
    -p submission "${out%.csv}.json" -p data_dir "$data" -p out_dir "$runs" \
    -p smoke "$(py_bool $smoke)"

stage "check the submission (src/score.py --check-submission)"
python src/score.py --check-submission "$out" --data "$data"

printf '\n==> [%4ds] done (%s)\n' "$((SECONDS - started))" "$workspace"
echo "$out"
