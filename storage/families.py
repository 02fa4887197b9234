"""All SQL about embeddings, family scores and the reader's family labels."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.core.text import DIMENSIONS, ENCODER_NAME
from pipeline.core.families import CODES
from storage.db import register_ids, connect, transaction

_SCORE_COLUMNS = tuple(code.lower() for code in CODES)
_VECTOR = pa.list_(pa.float32(), DIMENSIONS)


SCORES_STALE = "(s.arxiv_id IS NULL OR s.version <> p.version OR s.model_version <> $model_version)"
"""A paper ``p`` whose scores ``s`` (LEFT JOINed on arxiv_id) are missing or not current."""


def pending_papers(db_path: Path, model_version: str, limit: int | None = None,
                   encoder: str = ENCODER_NAME) -> list[dict]:
    """Papers without current scores (new, re-versioned or scored by another model), with
    ``has_embedding`` telling whether their current version is already embedded."""
    limit_sql = f"LIMIT {int(limit)}" if limit else ""
    with connect(db_path, read_only=True) as con:
        rows = con.execute(f"""
            SELECT p.arxiv_id, p.version, p.title, p.abstract, e.arxiv_id IS NOT NULL
            FROM papers p
            LEFT JOIN family_scores s ON s.arxiv_id = p.arxiv_id
            LEFT JOIN embeddings e ON e.arxiv_id = p.arxiv_id AND e.version = p.version
                                   AND e.encoder = $encoder
            WHERE {SCORES_STALE}
            ORDER BY p.arxiv_id {limit_sql}""", {"encoder": encoder,
                                                "model_version": model_version}).fetchall()
    return [{"arxiv_id": a, "version": v, "title": t, "abstract": ab, "has_embedding": h}
            for a, v, t, ab, h in rows]


def count_pending(db_path: Path, model_version: str) -> int:
    """How many stored papers lack current scores."""
    with connect(db_path, read_only=True) as con:
        return con.execute(f"""
            SELECT count(*) FROM papers p LEFT JOIN family_scores s USING (arxiv_id)
            WHERE {SCORES_STALE}""", {"model_version": model_version}).fetchone()[0]


def stored_vectors(db_path: Path, keys: list[tuple[str, int]],
                   encoder: str = ENCODER_NAME) -> dict[tuple[str, int], np.ndarray]:
    """Stored embeddings for ``(arxiv_id, version)`` pairs, where present."""
    if not keys:
        return {}
    wanted = pa.table({"arxiv_id": [key[0] for key in keys],
                       "version": pa.array([key[1] for key in keys], pa.int32())})
    with connect(db_path, read_only=True) as con:
        con.register("wanted", wanted)
        table = con.execute("""
            SELECT e.arxiv_id, e.version, e.vector FROM embeddings e
            JOIN wanted w ON w.arxiv_id = e.arxiv_id AND w.version = e.version
            WHERE e.encoder = ?""", [encoder]).arrow()
    return _vectors_by_key(table)


def _vectors_by_key(table) -> dict[tuple[str, int], np.ndarray]:
    table = table.read_all() if hasattr(table, "read_all") else table
    if table.num_rows == 0:
        return {}
    matrix = _matrix(table.column("vector"))
    keys = zip(table.column("arxiv_id").to_pylist(), table.column("version").to_pylist())
    return {key: matrix[row] for row, key in enumerate(keys)}


def _matrix(column) -> np.ndarray:
    flat = column.combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32).reshape(-1, DIMENSIONS)


def _embedding_table(rows: list[dict], encoder: str) -> pa.Table:
    vectors = np.asarray([row["vector"] for row in rows], dtype=np.float32).reshape(-1)
    return pa.table({
        "arxiv_id": [row["arxiv_id"] for row in rows],
        "version": pa.array([row["version"] for row in rows], pa.int32()),
        "encoder": [encoder] * len(rows),
        "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors, pa.float32()), DIMENSIONS),
    })


def _score_table(rows: list[dict], model_version: str) -> pa.Table:
    columns = {"arxiv_id": [row["arxiv_id"] for row in rows],
               "version": pa.array([row["version"] for row in rows], pa.int32()),
               "model_version": [model_version] * len(rows)}
    for code, column in zip(CODES, _SCORE_COLUMNS):
        columns[column] = pa.array([float(row["scores"][code]) for row in rows], pa.float32())
    columns["labels"] = pa.array([list(row["labels"]) for row in rows], pa.list_(pa.string()))
    columns["low_confidence"] = [bool(row.get("low_confidence")) for row in rows]
    return pa.table(columns)


def store_results(db_path: Path, embedded: list[dict], scored: list[dict], model_version: str,
                  encoder: str = ENCODER_NAME) -> None:
    """Write new embeddings (``arxiv_id``, ``version``, ``vector``) and scores
    (``arxiv_id``, ``version``, ``scores``, ``labels``, ``low_confidence``) in one transaction."""
    with transaction(db_path) as con:
        if embedded:
            con.register("new_vectors", _embedding_table(embedded, encoder))
            con.execute("INSERT INTO embeddings (arxiv_id, version, encoder, vector) "
                        "SELECT arxiv_id, version, encoder, vector FROM new_vectors "
                        "ON CONFLICT DO NOTHING")
            con.unregister("new_vectors")
        if scored:
            con.register("new_scores", _score_table(scored, model_version))
            names = ", ".join(("arxiv_id", "version", "model_version", *_SCORE_COLUMNS,
                               "labels", "low_confidence"))
            con.execute("DELETE FROM family_scores WHERE arxiv_id IN "
                        "(SELECT arxiv_id FROM new_scores)")
            con.execute(f"INSERT INTO family_scores ({names}) SELECT {names} FROM new_scores")
            con.unregister("new_scores")


def merge_results(con, relation: str, encoder: str = ENCODER_NAME) -> int:
    """Inside the caller's transaction: embeddings and scores from ``relation`` (a view with
    the columns of ``store_results``' tables, ``vector`` and ``model_version`` per row;
    rows without scores are left out), kept only where the row's version is the stored one
    (a paper that moved on is scored again by the next run). Returns the scores written."""
    current = (f"FROM {relation} r JOIN papers p ON p.arxiv_id = r.arxiv_id "
               "AND p.version = r.version WHERE r.model_version IS NOT NULL")
    con.execute(f"INSERT INTO embeddings (arxiv_id, version, encoder, vector) "
                f"SELECT r.arxiv_id, r.version, ?, r.vector::FLOAT[{DIMENSIONS}] {current} "
                "AND r.vector IS NOT NULL ON CONFLICT DO NOTHING", [encoder])
    names = ", ".join(("arxiv_id", "version", "model_version", *_SCORE_COLUMNS, "labels",
                       "low_confidence"))
    con.execute(f"CREATE OR REPLACE TEMP TABLE merged_scores AS SELECT "
                f"{', '.join('r.' + name for name in names.split(', '))} {current}")
    con.execute("DELETE FROM family_scores WHERE arxiv_id IN (SELECT arxiv_id FROM merged_scores)")
    con.execute(f"INSERT INTO family_scores ({names}) SELECT {names} FROM merged_scores")
    written = con.execute("SELECT count(*) FROM merged_scores").fetchone()[0]
    con.execute("DROP TABLE merged_scores")
    return written


def families_for(db_path: Path, arxiv_ids: list[str]) -> dict[str, dict]:
    """For each id with scores, a judgement or reader labels: ``{"labels", "scores",
    "source", "model_version", "low_confidence", "judge_version"}``. The reader's labels win
    (``source`` = ``reader``), then the LLM judge's for the paper's current version
    (``llm``), then the head's (``model``); scores are always the head's (empty when it has
    not scored the paper yet); ``judge_version`` names the judge of a current judgement."""
    if not arxiv_ids:
        return {}
    with connect(db_path, read_only=True) as con:
        register_ids(con, arxiv_ids)
        rows = con.execute(f"""
            SELECT w.arxiv_id, s.model_version, {', '.join('s.' + c for c in _SCORE_COLUMNS)},
                   s.labels, s.low_confidence, r.labels, j.labels, j.judge_version
            FROM wanted w LEFT JOIN family_scores s USING (arxiv_id)
            LEFT JOIN reader_labels r USING (arxiv_id)
            LEFT JOIN papers p ON p.arxiv_id = w.arxiv_id
            LEFT JOIN family_judgements j ON j.arxiv_id = w.arxiv_id AND j.version = p.version
            WHERE s.arxiv_id IS NOT NULL OR r.arxiv_id IS NOT NULL
               OR j.arxiv_id IS NOT NULL""").fetchall()
    return {row[0]: _family_record(row) for row in rows}


def _family_record(row) -> dict:
    model_version, values = row[1], row[2:2 + len(CODES)]
    model_labels, low_confidence, reader, judged, judge_version = row[2 + len(CODES):]
    scores = {} if model_version is None else {
        code: round(float(value), 4) for code, value in zip(CODES, values)}
    labels, source = model_labels or [], "model"
    if reader is not None:
        labels, source = reader, "reader"
    elif judged is not None:
        labels, source = judged, "llm"
    return {"labels": list(labels), "scores": scores, "source": source,
            "model_version": model_version, "low_confidence": bool(low_confidence),
            "judge_version": judge_version}


def _judgement_table(rows: list[dict]) -> pa.Table:
    return pa.table({"arxiv_id": [row["arxiv_id"] for row in rows],
                     "version": pa.array([row["version"] for row in rows], pa.int32()),
                     "judge_version": [row["judge_version"] for row in rows],
                     "labels": pa.array([list(row["labels"]) for row in rows],
                                        pa.list_(pa.string()))})


def store_judgements(db_path: Path, rows: list[dict]) -> None:
    """Write the LLM judge's labels (``arxiv_id``, ``version``, ``judge_version``,
    ``labels``; ``[]`` means none) in one transaction, replacing a paper's older judgement."""
    if not rows:
        return
    with transaction(db_path) as con:
        con.register("new_judgements", _judgement_table(rows))
        con.execute("DELETE FROM family_judgements WHERE arxiv_id IN "
                    "(SELECT arxiv_id FROM new_judgements)")
        con.execute("INSERT INTO family_judgements (arxiv_id, version, judge_version, labels) "
                    "SELECT arxiv_id, version, judge_version, labels FROM new_judgements")
        con.unregister("new_judgements")


def uncertain_papers(db_path: Path, model_version: str, thresholds: dict[str, float],
                     margin: float, limit: int | None = None) -> list[dict]:
    """Papers to re-check with the LLM judge: scored by head ``model_version`` at their
    current version, with some family's probability within ``margin`` of its threshold or
    judged on the title alone; without a judgement of that version and without reader
    labels (they win anyway). Closest to a threshold first: ``arxiv_id``, ``version``,
    ``title``, ``abstract``, ``labels`` (the head's)."""
    distances = ", ".join(f"abs(s.{column} - ?)" for column in _SCORE_COLUMNS)
    limit_sql = f"LIMIT {int(limit)}" if limit else ""
    with connect(db_path, read_only=True) as con:
        rows = con.execute(f"""
            SELECT p.arxiv_id, p.version, p.title, p.abstract, s.labels,
                   least({distances}) AS distance, s.low_confidence
            FROM papers p JOIN family_scores s ON s.arxiv_id = p.arxiv_id
                 AND s.version = p.version AND s.model_version = ?
            LEFT JOIN family_judgements j ON j.arxiv_id = p.arxiv_id AND j.version = p.version
            LEFT JOIN reader_labels r ON r.arxiv_id = p.arxiv_id
            WHERE j.arxiv_id IS NULL AND r.arxiv_id IS NULL
              AND (least({distances}) <= ? OR s.low_confidence)
            ORDER BY distance, p.arxiv_id {limit_sql}""",
                           [*_threshold_values(thresholds), model_version,
                            *_threshold_values(thresholds), float(margin)]).fetchall()
    return [{"arxiv_id": a, "version": v, "title": t, "abstract": ab, "labels": list(labels)}
            for a, v, t, ab, labels, _, _ in rows]


def _threshold_values(thresholds: dict[str, float]) -> list[float]:
    return [float(thresholds[code]) for code in CODES]


def set_reader_labels(db_path: Path, arxiv_id: str, labels: list[str]) -> None:
    """Store the reader's full label set for a paper (``[]`` means none)."""
    with connect(db_path) as con:
        con.execute("INSERT OR REPLACE INTO reader_labels (arxiv_id, labels, updated_at) "
                    "VALUES (?, ?, now())", [arxiv_id, list(labels)])


def clear_reader_labels(db_path: Path, arxiv_id: str) -> bool:
    """Forget the reader's labels for a paper; True when there were some."""
    with connect(db_path) as con:
        return con.execute("DELETE FROM reader_labels WHERE arxiv_id = ? RETURNING arxiv_id",
                           [arxiv_id]).fetchone() is not None


def reader_labeled(db_path: Path, encoder: str = ENCODER_NAME) -> list[dict]:
    """Every reader-labeled paper that is stored: id, version, title, abstract, labels and
    its stored ``vector`` (or ``None``) — the reader's share of the training data."""
    with connect(db_path, read_only=True) as con:
        rows = con.execute("""
            SELECT p.arxiv_id, p.version, p.title, p.abstract, r.labels, e.vector
            FROM reader_labels r JOIN papers p USING (arxiv_id)
            LEFT JOIN embeddings e ON e.arxiv_id = p.arxiv_id AND e.version = p.version
                                   AND e.encoder = ?
            ORDER BY p.arxiv_id""", [encoder]).fetchall()
    return [{"arxiv_id": a, "version": v, "title": t, "abstract": ab, "labels": list(labels),
             "vector": None if vector is None else np.asarray(vector, dtype=np.float32)}
            for a, v, t, ab, labels, vector in rows]


def embeddings_for(db_path: Path, arxiv_ids: list[str] | None = None,
                   encoder: str = ENCODER_NAME) -> tuple[list[str], np.ndarray]:
    """Embeddings of the stored (current) version of papers: ``(ids, matrix (n, 384))``.

    ``arxiv_ids=None`` returns every embedded paper. Papers not embedded yet are left out,
    so ``ids`` may be shorter than the request; rows are in ``ids`` order."""
    with connect(db_path, read_only=True) as con:
        where = ""
        if arxiv_ids is not None:
            register_ids(con, arxiv_ids)
            where = "AND p.arxiv_id IN (SELECT arxiv_id FROM wanted)"
        table = con.execute(f"""
            SELECT e.arxiv_id, e.vector FROM embeddings e
            JOIN papers p ON p.arxiv_id = e.arxiv_id AND p.version = e.version
            WHERE e.encoder = ? {where} ORDER BY e.arxiv_id""", [encoder]).arrow()
    table = table.read_all() if hasattr(table, "read_all") else table
    if table.num_rows == 0:
        return [], np.zeros((0, DIMENSIONS), dtype=np.float32)
    return table.column("arxiv_id").to_pylist(), _matrix(table.column("vector"))


def nearest(db_path: Path, vector: np.ndarray, limit: int = 10,
            arxiv_ids: list[str] | None = None, exclude: list[str] | None = None,
            encoder: str = ENCODER_NAME) -> list[tuple[str, float]]:
    """The stored papers most similar to ``vector`` (cosine, computed in DuckDB with
    ``array_cosine_similarity``): ``[(arxiv_id, similarity)]``, best first. ``arxiv_ids``
    restricts the candidates; ``exclude`` drops some (e.g. the query paper itself)."""
    query = [float(value) for value in np.asarray(vector, dtype=np.float32).reshape(-1)]
    with connect(db_path, read_only=True) as con:
        filters = ""
        if arxiv_ids is not None:
            con.register("allowed", pa.table({"arxiv_id": list(arxiv_ids)}))
            filters += " AND e.arxiv_id IN (SELECT arxiv_id FROM allowed)"
        if exclude:
            con.register("excluded", pa.table({"arxiv_id": list(exclude)}))
            filters += " AND e.arxiv_id NOT IN (SELECT arxiv_id FROM excluded)"
        rows = con.execute(f"""
            SELECT e.arxiv_id, array_cosine_similarity(e.vector, ?::FLOAT[{DIMENSIONS}]) AS sim
            FROM embeddings e JOIN papers p ON p.arxiv_id = e.arxiv_id AND p.version = e.version
            WHERE e.encoder = ? {filters}
            ORDER BY sim DESC, e.arxiv_id LIMIT ?""", [query, encoder, int(limit)]).fetchall()
    return [(arxiv_id, float(similarity)) for arxiv_id, similarity in rows]
