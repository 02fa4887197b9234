-- Summaries: at most one per paper and (backend, model, prompt version); `version` is the
-- paper version it was made from, so a new paper version or a new model/prompt makes it stale.
CREATE TABLE summaries (
    arxiv_id         VARCHAR NOT NULL,
    backend          VARCHAR NOT NULL,     -- extractive | hf | openai
    model            VARCHAR NOT NULL,
    prompt_version   VARCHAR NOT NULL,     -- summarize.v1, extractive.v1, ...
    version          INTEGER NOT NULL,
    tldr             VARCHAR NOT NULL,
    problem          VARCHAR NOT NULL,
    method           VARCHAR NOT NULL,
    results          VARCHAR NOT NULL,
    why_it_matters   VARCHAR NOT NULL,
    extractive       BOOLEAN NOT NULL,     -- every field copied from the abstract
    fallback_fields  VARCHAR[] NOT NULL,   -- fields copied because the model gave nothing usable
    created_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (arxiv_id, backend, model, prompt_version)
);
