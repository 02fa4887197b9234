-- Papers: one row per arXiv id, holding its latest version.
CREATE TABLE papers (
    arxiv_id          VARCHAR PRIMARY KEY,
    version           INTEGER NOT NULL,
    title             VARCHAR NOT NULL,
    authors           VARCHAR[] NOT NULL,
    abstract          VARCHAR NOT NULL,
    categories        VARCHAR[] NOT NULL,
    primary_category  VARCHAR NOT NULL,
    published         TIMESTAMPTZ,
    updated           TIMESTAMPTZ,
    comment           VARCHAR,
    journal_ref       VARCHAR,
    doi               VARCHAR,
    abs_url           VARCHAR NOT NULL,
    pdf_url           VARCHAR NOT NULL,
    announce_type     VARCHAR NOT NULL,
    listed_date       DATE,
    hydrated          BOOLEAN NOT NULL DEFAULT false,
    first_seen        TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen         TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every version ever seen, so a v2 never erases what v1 said.
CREATE TABLE paper_versions (
    arxiv_id   VARCHAR NOT NULL,
    version    INTEGER NOT NULL,
    title      VARCHAR NOT NULL,
    abstract   VARCHAR NOT NULL,
    updated    TIMESTAMPTZ,
    seen_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (arxiv_id, version)
);

CREATE SEQUENCE runs_id_seq START 1;

-- One row per `octet run` / `octet fetch`: the report that keeps a silent day from being silent.
CREATE TABLE runs (
    run_id            INTEGER PRIMARY KEY DEFAULT nextval('runs_id_seq'),
    command           VARCHAR NOT NULL,
    started_at        TIMESTAMPTZ NOT NULL,
    finished_at       TIMESTAMPTZ,
    status            VARCHAR NOT NULL,
    exit_code         INTEGER,
    categories        VARCHAR[],
    announced         INTEGER DEFAULT 0,
    fetched           INTEGER DEFAULT 0,
    new               INTEGER DEFAULT 0,
    updated           INTEGER DEFAULT 0,
    unchanged         INTEGER DEFAULT 0,
    skipped           INTEGER DEFAULT 0,
    report            JSON,
    duration_seconds  DOUBLE
);
