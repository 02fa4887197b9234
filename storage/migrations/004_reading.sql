-- Reading state. A paper with no row here is in the inbox.
CREATE TABLE reading (
    arxiv_id        VARCHAR PRIMARY KEY,
    state           VARCHAR NOT NULL
                    CHECK (state IN ('inbox', 'queued', 'pick', 'read', 'skipped', 'dismissed')),
    queue_position  DOUBLE,              -- order within the queue (lower first)
    week            VARCHAR,             -- ISO week 'YYYY-Www' it was picked or read in
    rating          INTEGER CHECK (rating IS NULL OR rating BETWEEN 1 AND 5),
    notes           VARCHAR,             -- the reader's Markdown notes
    started_at      TIMESTAMPTZ,
    read_on         DATE,
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Exactly one pick per ISO week (in the reader's time zone).
CREATE TABLE weekly_picks (
    week        VARCHAR PRIMARY KEY,     -- 'YYYY-Www'
    arxiv_id    VARCHAR NOT NULL,
    chosen_by   VARCHAR NOT NULL CHECK (chosen_by IN ('reader', 'octet')),
    reason      VARCHAR,                 -- one line: why this one
    runners_up  VARCHAR[],
    status      VARCHAR NOT NULL DEFAULT 'pick' CHECK (status IN ('pick', 'read', 'skipped')),
    picked_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX weekly_picks_paper ON weekly_picks (arxiv_id);

-- Small facts about the reader that outlive a session (e.g. when the app was last opened,
-- so the inbox can show what arrived since).
CREATE TABLE reader_state (
    key         VARCHAR PRIMARY KEY,
    value       VARCHAR NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Keyword search: every distinct word (lower-case letters and digits) of each paper's title
-- and abstract, kept sorted by word so a prefix lookup reads a few row groups.
-- Papers not indexed yet (see search_indexed) are searched by a scan instead.
CREATE TABLE search_words (
    word      VARCHAR NOT NULL,
    arxiv_id  VARCHAR NOT NULL
);

-- Which version of each paper search_words holds.
CREATE TABLE search_indexed (
    arxiv_id  VARCHAR PRIMARY KEY,
    version   INTEGER NOT NULL
);
