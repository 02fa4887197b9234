"""The ``local`` engine: the shard plan run in this process, batch by batch, with the
same workers as Ray's actors (so small machines and the tests share the code path)."""
from __future__ import annotations

from typing import Iterator

import pyarrow as pa

from pipeline.stages.backfill.work import (BATCH_SIZE, ClassifyWorker, SummarizeWorker,
                                           read_inputs, write_parts)


class LocalEngine:
    """Runs each open shard here; yields a report per part written."""

    def run(self, settings, job, stamp, options) -> Iterator[dict]:
        steps = _steps(settings, stamp, job.stages)
        for shard in job.shards:
            table = read_inputs(pa.table({"path": [str(p) for p in job.input_files(shard)]}))
            for start in range(0, table.num_rows, BATCH_SIZE):
                batch = table.slice(start, BATCH_SIZE)
                for step in steps:
                    batch = step(batch)
                yield from write_parts(batch, str(job.results_folder)).to_pylist()


def _steps(settings, stamp, stages: tuple[str, ...]) -> list:
    steps = []
    if "classify" in stages:
        steps.append(ClassifyWorker(stamp.head.version, stamp.head_bytes, settings.device))
    if "summarize" in stages:
        steps.append(SummarizeWorker(stamp.summary_plan))
    return steps
