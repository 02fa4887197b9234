-- The LLM judge's family labels, one row per paper: the version of the paper it read and
-- the judge that read it (backend:model:prompt). A row of an older paper version is
-- ignored (the paper is re-checked); the reader's labels still win over it.
CREATE TABLE family_judgements (
    arxiv_id       VARCHAR PRIMARY KEY,
    version        INTEGER NOT NULL,
    judge_version  VARCHAR NOT NULL,
    labels         VARCHAR[] NOT NULL,       -- family codes; [] means none
    judged_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
