"""The ``ray`` engine: the shard plan as one Ray Data pipeline (``pip install 'octet[cluster]'``).

Ray Data reads the input shards in blocks, classifies them in an actor pool (one encoder
and head per actor, batched), summarizes them in a second pool (extractive on CPUs, a
generative model on GPU actors), and writes each batch's results as Parquet parts in the
staging folder. Only the parts' one-line reports come back to the driver, which merges
finished shards into DuckDB: the database keeps a single writer.

Ray restarts a killed actor and retries its task (Ray Data's defaults for actor pools), and
a retried task writes the same part file again, so a lost worker costs time, not rows.
"""
from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from typing import Iterator

from pipeline.core.errors import ConfigError
from pipeline.stages.backfill.work import (BATCH_SIZE, ClassifyWorker, SummarizeWorker,
                                           read_inputs, write_parts)

log = logging.getLogger(__name__)

LIGHT_CPUS = 0.1
"""What a read or write task and an extractive summary actor ask for: they are light, and
the classification actors get the rest of the cluster."""

NEEDS_RAY = ("the ray engine needs Ray Data: pip install 'octet[cluster]' (or use "
             "--engine local)")


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401 (ray without the data extra has no ray.data)
    except ImportError:
        raise ConfigError(NEEDS_RAY) from None
    return ray


class RayEngine:
    """Runs the open shards on Ray Data; yields a report per part written."""

    def run(self, settings, job, stamp, options) -> Iterator[dict]:
        ray = _ray()
        # Ray prints its cluster's news ("a worker died") on stdout, where `--json` goes.
        with contextlib.redirect_stdout(sys.stderr):
            started_here = _connect(ray, options.address)
            try:
                dataset = _pipeline(ray, job, stamp, options)
                for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
                    yield from batch.to_pylist()
            finally:
                if started_here:
                    ray.shutdown()


def _quiet_ray() -> None:
    """Ray's own lines (plans, deprecations, tips) are not the reader's: they go to Ray's
    log files, and stderr keeps our bar and errors (``-v`` shows them)."""
    if logging.getLogger().level > logging.DEBUG and not log.isEnabledFor(logging.DEBUG):
        for name in ("ray", "ray.data"):
            logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"ray\..*")


def _connect(ray, address: str | None) -> bool:
    """Join the cluster at ``address``, or start Ray here; True when this call started it."""
    _quiet_ray()
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    except ConnectionError as error:
        raise ConfigError(f"cannot join the Ray cluster at {address} ({error}); start one "
                          "with `ray start --head` or leave out --address") from None
    return True


def _pipeline(ray, job, stamp, options):
    """read → classify (actors) → summarize (actors) → write parts (tasks)."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False  # the driver draws its own bar, on stderr only
    files = [str(path) for shard in job.shards for path in job.input_files(shard)]
    # One read task and block per shard file: ``read_parquet`` reads small files as one
    # block, which one actor then classified alone while nothing reached the writer.
    dataset = ray.data.from_items([{"path": path} for path in files],
                                  override_num_blocks=len(files))
    dataset = dataset.map_batches(read_inputs, batch_size=1, batch_format="pyarrow",
                                  num_cpus=LIGHT_CPUS)
    cpus = ray.cluster_resources().get("CPU", 1.0)
    workers = options.workers or max(1, int(cpus))
    classify, summarize = _pools(ray, cpus, workers, options.gpus_per_worker,
                                 _generative(stamp))
    if "classify" in job.stages:
        dataset = dataset.map_batches(_bound(ClassifyWorker, **_classify_arguments(
            stamp, classify, cpus, workers)), **classify)
    if "summarize" in job.stages:
        dataset = dataset.map_batches(_bound(SummarizeWorker, plan=stamp.summary_plan),
                                      **summarize)
    return dataset.map_batches(write_parts, fn_kwargs={"folder": str(job.results_folder)},
                               batch_format="pyarrow", batch_size=None, num_cpus=LIGHT_CPUS)


def _generative(stamp) -> bool:
    return bool(stamp.summary_plan) and stamp.summary_plan.settings.summarizer != "extractive"


def _pools(ray, cpus: float, workers: int, gpus: float, generative: bool) -> tuple[dict, dict]:
    """The classification and summary pools' sizes and resources. Every actor's CPUs come
    out of what the light tasks (read, write) leave, or actors holding every CPU would
    starve those tasks and the pipeline would wait forever. GPUs go to the costly stage:
    generation when summaries are generative, else the encoder."""
    budget = max(LIGHT_CPUS, cpus - 3 * LIGHT_CPUS)
    if not generative:  # extractive summaries: one light actor keeps up with any encoder
        return (_pool(ray, workers, min(1.0, budget / workers), gpus),
                _pool(ray, 1, LIGHT_CPUS, 0))
    if gpus:
        share = max(LIGHT_CPUS, min(1.0, (budget - workers * LIGHT_CPUS) / workers))
        return _pool(ray, workers, share, 0), _pool(ray, workers, LIGHT_CPUS, gpus)
    share = max(LIGHT_CPUS, min(1.0, budget / (2 * workers)))
    return _pool(ray, workers, share, 0), _pool(ray, workers, share, 0)


def _classify_arguments(stamp, pool: dict, cpus: float, workers: int) -> dict:
    """The encoder on CUDA when its pool has GPUs; else on CPU threads of its own."""
    on_gpu = bool(pool.get("num_gpus"))
    return {"head_version": stamp.head.version, "head_bytes": stamp.head_bytes,
            "device": "cuda" if on_gpu else "cpu",
            "threads": None if on_gpu else max(1, int(cpus // workers))}


def _bound(worker: type, **arguments) -> type:
    """``worker`` with its arguments built in: Ray ships the class with the code, instead
    of keeping constructor arguments in the object store (where a restarted actor could
    lose them, and Ray says so on stderr)."""
    class Bound(worker):
        def __init__(self):
            super().__init__(**arguments)
    Bound.__name__ = Bound.__qualname__ = worker.__name__
    return Bound


def _pool(ray, size: int, cpus: float, gpus: float) -> dict:
    pool = {"batch_size": BATCH_SIZE, "batch_format": "pyarrow",
            "compute": ray.data.ActorPoolStrategy(size=size), "num_cpus": cpus}
    if gpus:
        pool["num_gpus"] = gpus
    return pool
