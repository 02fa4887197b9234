-- Backfills (`octet backfill`): a job stores a file's papers, plans the papers that lack
-- scores or summaries into shards, and merges each shard's results in one transaction.
-- A rerun of the same command (same `job_key`) resumes the newest unfinished job.
CREATE TABLE backfill_jobs (
    job_id       VARCHAR PRIMARY KEY,         -- job_key, '-', when it started (UTC)
    job_key      VARCHAR NOT NULL,            -- the input files and options, hashed
    source       VARCHAR NOT NULL,            -- FILE as given
    engine       VARCHAR NOT NULL,            -- local | ray
    stages       VARCHAR[] NOT NULL,          -- classify, summarize
    staging      VARCHAR NOT NULL,            -- the folder of its Parquet shards
    state        VARCHAR NOT NULL,            -- storing | running | done | failed
    papers       INTEGER NOT NULL DEFAULT 0,  -- papers read from the input
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ
);

-- One row per planned shard; 'merged' is written in the same transaction as its results.
CREATE TABLE backfill_shards (
    job_id     VARCHAR NOT NULL,
    shard      INTEGER NOT NULL,
    papers     INTEGER NOT NULL,
    state      VARCHAR NOT NULL DEFAULT 'pending',   -- pending | merged | failed
    attempts   INTEGER NOT NULL DEFAULT 0,
    error      VARCHAR,
    merged_at  TIMESTAMPTZ,
    PRIMARY KEY (job_id, shard)
);
