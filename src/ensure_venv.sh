# Sourced by run_all.sh and tests/run.sh: make sure .venv exists and matches requirements.txt
# and pyproject.toml. Creates it on first use (python3 -m venv + pip install of the pinned
# requirements, then this checkout as an editable package: the landcover-* commands),
# reinstalls when either changes. Set PYTHON to choose the interpreter that creates it.

venv_stamp=".venv/.requirements.sha256"
wanted="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ ! -x .venv/bin/python || ! -f "$venv_stamp" || "$(cat "$venv_stamp")" != "$wanted" ]]; then
    echo "==> setting up .venv from requirements.txt (first run: several minutes; torch is large)"
    [[ -x .venv/bin/python ]] || "${PYTHON:-python3}" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -r requirements.txt
    .venv/bin/python -m pip install --quiet --no-deps -e .
    echo "$wanted" > "$venv_stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"  # papermill's python3 kernel then runs the venv's python
export PYTHONWARNINGS="${PYTHONWARNINGS:-ignore::UserWarning}"
# OpenMP threads spin while they wait for work (ACTIVE): on a small machine whose cores are
# shared (2-4: a laptop, this project's CI) the spinning starves the other threads and makes
# torch and LightGBM several times slower, so they wait passively there; on a big machine the
# spinning is what keeps many cores busy between parallel regions, so it is left alone.
if [[ -z "${OMP_WAIT_POLICY:-}" && "$(nproc)" -le 4 ]]; then
    export OMP_WAIT_POLICY=PASSIVE
fi
# Notebook kernels (papermill) read this IPython profile: the kernel's "running over TCP
# without encryption" warning concerns a local kernel that only papermill talks to, and is
# silenced at its source; output written to the kernel's own stderr (progress.py) reaches the
# terminal instead of being copied into the notebook; IPython's history database is not needed.
export IPYTHONDIR="$PWD/.venv/ipython"
kernel_config="$IPYTHONDIR/profile_default/ipython_kernel_config.py"
mkdir -p "$(dirname "$kernel_config")"
printf '%s\n' 'c.IPKernelApp.log_level = "ERROR"' 'c.IPKernelApp.capture_fd_output = False' \
    'c.HistoryManager.enabled = False' > "$kernel_config"
