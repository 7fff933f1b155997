"""Every (experiment, fold) as an independent Ray task, on a local cluster (``ray.init()``) or
a running one (``address``: "auto" or "host:port", started with ``ray start --head``).

The driver (this process) prepares the data and the fold plans, submits one task per fold
with the resources of ``run.gpus_per_job`` / ``run.cpus_per_job`` (CPU-only members ask no
GPU), and assembles each experiment when all its folds are done: only the driver writes
``<oof_dir>/<exp>/``. Tasks get paths, never arrays (every node reads the cache from the
shared file system); a task writes only its fold's work directory, and one that fails is
retried (``run.retries``) and resumes from its last checkpoint. These settings live in
``run`` and do not change results: a fold trains exactly as in the local engine.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .cache import PreparedData, prepare_data
from .errors import ConfigError, LandcoverError
from .experiment import _fold_dir, finish, run_fold
from .experiment import run_experiment as run_locally
from .fold_plan import plan_for
from .freshness import fold_key, folds_done, prediction_hash, staleness
from .members import member_for
from .progress import Reporter
from .provenance import REPO_ROOT
from .runtime import resolve_device


def fold_task(config: dict, data_dir: str, cache_dir: str, oof_dir: str, fold: int) -> dict:
    """One fold, in a Ray worker: the same ``run_fold`` as the local engine. Each attempt is
    logged in the fold's ``attempts.jsonl`` (kept in the experiment)."""
    started = time.time()
    torch.set_num_threads(int(config["run"]["threads"] or config["run"]["cpus_per_job"]))
    data = prepare_data(data_dir, cache_dir=cache_dir)
    plan = plan_for(data, config["data"])  # the driver's file
    work = Path(oof_dir) / ".work" / config["experiment"]
    fold_dir = _fold_dir(work, fold, fold_key(config, data, plan), force=False)
    attempt = {"pid": os.getpid(), "host": platform.node(), "started": started}
    with (fold_dir / "attempts.jsonl").open("a") as log:
        log.write(json.dumps(attempt) + "\n")
    device = resolve_device(config["run"]["device"])
    reporter = Reporter(config["experiment"], [fold], plan.n_folds, config["train"]["epochs"])
    summary = run_fold(config, data, plan, fold, fold_dir, device, reporter)
    return {**summary, "pid": os.getpid()}


def _runtime_env() -> dict:
    """Workers import the package from this checkout and see the driver's test hooks."""
    env = {"PYTHONPATH": str(REPO_ROOT / "src")}
    for name in ("LANDCOVER_FAIL_ONCE", "OMP_WAIT_POLICY"):
        if name in os.environ:
            env[name] = os.environ[name]
    return {"env_vars": env}


def run_on_ray(
    configs: list[dict],
    data: PreparedData,
    oof_dir: str | os.PathLike[str],
    *,
    address: str | None = None,
    force: bool = False,
    init: dict | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Path | None]:
    """Train every fold of every experiment as Ray tasks; returns {name: experiment dir}."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, **(init or {}))
    gpus_here = ray.cluster_resources().get("GPU", 0) > 0
    oof_dir, written, pending, jobs = Path(oof_dir), {}, {}, {}
    for config in configs:
        name = config["experiment"]
        state, why = staleness(oof_dir / name, config, data)
        if state == "stale" and not force:
            raise ConfigError(
                f"{oof_dir / name}: holds {name} {why}; --force replaces it, --artifacts DIR "
                "keeps both"
            )
        if state in ("complete", "repredict") and not force:  # nothing (much) to schedule
            written[name] = run_locally(config, data, oof_dir=oof_dir, log=log)
            continue
        member = member_for(config)
        plan = plan_for(data, config["data"])
        key, work = fold_key(config, data, plan), oof_dir / ".work" / name
        wanted = [
            k
            for k in range(plan.n_folds)
            if force or k not in folds_done(work, plan.n_folds, key, prediction_hash(config))
        ]
        if force:  # the driver resets the folds once; the tasks (and their retries) resume
            for k in wanted:
                _fold_dir(work, k, key, force=True)
        gpus = config["run"]["gpus_per_job"] if member.is_network and gpus_here else 0
        task = ray.remote(fold_task).options(
            num_gpus=gpus,
            num_cpus=config["run"]["cpus_per_job"],
            max_retries=config["run"]["retries"],
            retry_exceptions=True,
            runtime_env=_runtime_env(),
        )
        args = (str(data.layout.root), str(data.cache_dir), str(oof_dir))
        for k in wanted:
            pending[task.remote(config, *args, k)] = (name, k)
        jobs[name] = (config, plan, "cuda" if gpus else "cpu")
        if not wanted:
            written[name] = finish(config, data, plan, oof_dir, torch.device("cpu"), log)
    log(f"ray: {len(pending)} fold task(s) for {len(jobs)} experiment(s) on {_cluster(ray)}")
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        name, fold = pending.pop(ready[0])
        try:
            summary = ray.get(ready[0])
        except ray.exceptions.RayTaskError as err:
            raise LandcoverError(f"{name} fold {fold} failed on Ray: {err.cause}") from None
        log(f"{name} fold {fold}: val KL {summary['kl']:.5f} (pid {summary['pid']})")
        if not any(n == name for n, _ in pending.values()):
            config, plan, device = jobs[name]
            written[name] = finish(config, data, plan, oof_dir, torch.device(device), log)
    return written


def _cluster(ray) -> str:
    res = ray.cluster_resources()
    return f"{int(res.get('CPU', 0))} CPUs, {res.get('GPU', 0):g} GPUs"
