"""The work on one batch of a shard, the same for every engine: classify, summarize, write.

Each step takes and returns an Arrow table, so the local engine calls them in a loop and
Ray Data runs them in its actor pools unchanged; both therefore produce the same rows.
A worker is built once (encoder, head and summarizer loaded in ``__init__``) and called
on many batches.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.core.families import CODES
from pipeline.core.paper import Paper
from pipeline.core.text import DIMENSIONS, paper_text

log = logging.getLogger(__name__)

BATCH_SIZE = 256
"""Papers per call of a worker: the encoder's sweet spot on a CPU (see ``families``)."""

ATTEMPTS = 2
"""A batch whose work raises is tried this often before its shard is reported failed."""

_TEXT_FIELDS = ("tldr", "problem", "method", "results", "why_it_matters")
_STRINGS = pa.list_(pa.string())
RESULT_SCHEMA = pa.schema([
    ("shard", pa.int32()), ("arxiv_id", pa.string()), ("version", pa.int32()),
    ("model_version", pa.string()), ("vector", pa.list_(pa.float32(), DIMENSIONS)),
    *[(code.lower(), pa.float32()) for code in CODES],
    ("labels", _STRINGS), ("low_confidence", pa.bool_()),
    ("backend", pa.string()), ("model", pa.string()), ("prompt_version", pa.string()),
    *[(name, pa.string()) for name in _TEXT_FIELDS],
    ("extractive", pa.bool_()), ("fallback_fields", _STRINGS), ("ungrounded_fields", _STRINGS),
    ("created_at", pa.timestamp("us", tz="UTC")), ("summary_error", pa.string()),
    ("error", pa.string()),
])
"""One row per paper of a shard: its scores (null when it needed none), its summary (null
when it needed none or failed: ``summary_error`` says why) and ``error`` when the whole
batch failed (the shard is then not merged)."""

REPORT_SCHEMA = pa.schema([("shard", pa.int32()), ("path", pa.string()), ("rows", pa.int64()),
                           ("summary_errors", pa.int64()), ("error", pa.string())])
"""What the writer tells the driver about each part file it wrote."""


def _column(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist()


def _with(table: pa.Table, columns: dict[str, list]) -> pa.Table:
    """``table`` with ``columns`` set (typed by ``RESULT_SCHEMA``), replacing any held."""
    for name, values in columns.items():
        array = pa.array(values, RESULT_SCHEMA.field(name).type)
        index = table.schema.get_field_index(name)
        table = (table.set_column(index, name, array) if index >= 0
                 else table.append_column(name, array))
    return table


def _mask(table: pa.Table, name: str) -> list[bool]:
    return [bool(value) for value in _column(table, name)]


class Step:
    """A worker step: ``apply`` on a batch, tried ``ATTEMPTS`` times; a batch that still
    fails (or failed in an earlier step) comes back with ``error`` set on every row."""

    def apply(self, table: pa.Table) -> pa.Table:
        raise NotImplementedError

    def __call__(self, table: pa.Table) -> pa.Table:
        if "error" in table.column_names and table.column("error").null_count < table.num_rows:
            return table
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self.apply(table)
            except Exception as error:  # one bad batch must not end the backfill
                log.warning("%s: attempt %d of %d failed: %s", type(self).__name__, attempt,
                            ATTEMPTS, error, exc_info=True)
                failure = f"{type(self).__name__}: {type(error).__name__}: {error}"
        return failed_rows(table, failure.splitlines()[0][:500])


# ---- classification -----------------------------------------------------------------------

class ClassifyWorker(Step):
    """Embeds and classifies the rows marked ``classify``, as the daily stage does."""

    def __init__(self, head_version: str, head_bytes: bytes | None = None, device: str = "auto",
                 threads: int | None = None):
        from pipeline.stages.encoder import pick_device
        from pipeline.stages.families import current_head, load_head

        # The packaged head is installed on every node; only a retrained one travels.
        self.head = load_head(io.BytesIO(head_bytes)) if head_bytes else current_head()
        if self.head.version != head_version:
            raise RuntimeError(f"this node has head {self.head.version}, the driver "
                               f"{head_version}: install the same Octet on every node")
        self.device = pick_device(device)
        self.threads = threads

    def _embed(self, texts: list[str]) -> np.ndarray:
        from pipeline.stages.encoder import embed_texts

        if self.threads and self.device == "cpu":
            import torch  # a worker shares its node with others: it uses only its own cores

            embed_texts(["warm up"], device=self.device)  # loading sets the threads itself
            torch.set_num_threads(self.threads)
            self.threads = None
        return embed_texts(texts, device=self.device)

    def apply(self, table: pa.Table) -> pa.Table:
        from pipeline.stages.families import classify_embedded

        wanted = [row for row, needed in enumerate(_mask(table, "classify")) if needed]
        columns = {name: [None] * table.num_rows for name in
                   ("model_version", "vector", *(c.lower() for c in CODES), "labels",
                    "low_confidence")}
        if wanted:
            ids, titles, abstracts = (_pick(_column(table, name), wanted)
                                      for name in ("arxiv_id", "title", "abstract"))
            vectors = self._embed([paper_text(t, a) for t, a in zip(titles, abstracts)])
            for row, vector, found in zip(wanted, vectors, classify_embedded(
                    self.head, ids, titles, abstracts, vectors)):
                _fill_scores(columns, row, vector, found)
        return _with(table, columns)


def _pick(values: list, rows: list[int]) -> list:
    return [values[row] for row in rows]


def _fill_scores(columns: dict[str, list], row: int, vector: np.ndarray, found) -> None:
    columns["model_version"][row] = found.model_version
    columns["vector"][row] = vector.astype(np.float32).tolist()
    for code in CODES:
        columns[code.lower()][row] = found.scores[code]
    columns["labels"][row] = list(found.labels)
    columns["low_confidence"][row] = found.low_confidence


# ---- summaries ----------------------------------------------------------------------------

class SummarizeWorker(Step):
    """Summarizes the rows marked ``summarize`` with the planned backend (``Plan``)."""

    def __init__(self, plan):
        from pipeline.stages.summaries import build_summarizer

        self.summarizer = build_summarizer(plan)

    def apply(self, table: pa.Table) -> pa.Table:
        from pipeline.stages.summaries import summarize_isolated
        from pipeline.stages.summaries.summary import Summary

        wanted = [row for row, needed in enumerate(_mask(table, "summarize")) if needed]
        columns = {field.name: [None] * table.num_rows for field in RESULT_SCHEMA
                   if field.name in ("backend", "model", "prompt_version", *_TEXT_FIELDS,
                                     "extractive", "fallback_fields", "ungrounded_fields",
                                     "created_at", "summary_error")}
        papers = papers_of(table.take(wanted)) if wanted else []
        for row, result in zip(wanted, summarize_isolated(self.summarizer, papers) if papers else []):
            if isinstance(result, Summary):
                _fill_summary(columns, row, result)
            else:
                columns["summary_error"][row] = (result.error or "unknown error").splitlines()[0]
        return _with(table, columns)

    def __del__(self):
        try:
            self.summarizer.close()
        except Exception:  # an interpreter shutting down may have unloaded what close needs
            pass


def _fill_summary(columns: dict[str, list], row: int, summary) -> None:
    for name in ("backend", "model", "prompt_version", *_TEXT_FIELDS, "extractive"):
        columns[name][row] = getattr(summary, name)
    columns["fallback_fields"][row] = list(summary.fallback_fields)
    columns["ungrounded_fields"][row] = list(summary.ungrounded_fields)
    columns["created_at"][row] = summary.created_at


def papers_of(table: pa.Table) -> list[Paper]:
    """The ``Paper`` of each input row (the columns of ``storage.papers.PAPER_FIELDS``)."""
    from storage.papers import PAPER_FIELDS, paper_from_record

    return [paper_from_record(record) for record in table.select(list(PAPER_FIELDS)).to_pylist()]


# ---- writing ------------------------------------------------------------------------------

def read_inputs(table: pa.Table) -> pa.Table:
    """The papers of the input files named in ``table``'s ``path`` column."""
    return pa.concat_tables([pq.read_table(path) for path in _column(table, "path")])


def failed_rows(table: pa.Table, error: str) -> pa.Table:
    """The batch's rows carrying ``error``: its shard is reported, not merged."""
    return _with(table, {"error": [error] * table.num_rows})


def part_path(folder: Path, shard: int, ids: list[str]) -> Path:
    """Where a part of ``shard`` holding ``ids`` goes: the same name for the same rows, so a
    retried task overwrites its own file instead of adding a second copy."""
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
    return Path(folder) / f"shard-{shard:06d}" / f"part-{digest}.parquet"


def write_parts(table: pa.Table, folder: str) -> pa.Table:
    """Write the batch's results, one Parquet file per shard it holds (written to a
    temporary name, then renamed: a file is whole or absent); returns one report row each."""
    reports = []
    for shard in sorted(set(_column(table, "shard"))):
        rows = table.filter(pc.equal(table.column("shard"), shard))
        result = _result_table(rows)
        path = part_path(Path(folder), shard, _column(result, "arxiv_id"))
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        pq.write_table(result, temporary)
        temporary.replace(path)
        errors = [error for error in _column(result, "error") if error]
        reports.append({"shard": shard, "path": str(path), "rows": result.num_rows,
                        "summary_errors": sum(1 for e in _column(result, "summary_error") if e),
                        "error": errors[0] if errors else None})
    return pa.Table.from_pylist(reports, schema=REPORT_SCHEMA)


def _result_table(rows: pa.Table) -> pa.Table:
    """The result columns of ``rows``, every one present (null where a step did not run)."""
    columns = {}
    for field in RESULT_SCHEMA:
        if field.name in rows.column_names:
            columns[field.name] = rows.column(field.name).cast(field.type)
        else:
            columns[field.name] = pa.nulls(rows.num_rows, field.type)
    return pa.table(columns, schema=RESULT_SCHEMA)
