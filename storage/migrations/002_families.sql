-- Sentence embeddings, one per paper version and encoder: computed once, reused by the
-- classifier, search and similarity. FLOAT[384] so array_cosine_similarity works.
CREATE TABLE embeddings (
    arxiv_id    VARCHAR NOT NULL,
    version     INTEGER NOT NULL,
    encoder     VARCHAR NOT NULL,
    vector      FLOAT[384] NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (arxiv_id, version, encoder)
);

-- The model's family scores for the stored version of each paper. A row is current when
-- its version equals papers.version and model_version is the head in use.
CREATE TABLE family_scores (
    arxiv_id        VARCHAR PRIMARY KEY,
    version         INTEGER NOT NULL,
    model_version   VARCHAR NOT NULL,
    llm FLOAT NOT NULL, lcm FLOAT NOT NULL, lam FLOAT NOT NULL, moe FLOAT NOT NULL,
    vlm FLOAT NOT NULL, slm FLOAT NOT NULL, mlm FLOAT NOT NULL, sam FLOAT NOT NULL,
    labels          VARCHAR[] NOT NULL,      -- family codes; [] means none
    low_confidence  BOOLEAN NOT NULL DEFAULT false,
    scored_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The reader's own labels: they always win over the model's, and train the next head.
CREATE TABLE reader_labels (
    arxiv_id    VARCHAR PRIMARY KEY,
    labels      VARCHAR[] NOT NULL,          -- the full set; [] means none
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
