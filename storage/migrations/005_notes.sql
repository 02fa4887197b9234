-- What Octet last wrote into each Obsidian note, per vault: the baseline that tells an
-- edit made in Obsidian from one made in the app, so neither side overwrites the other.
CREATE TABLE note_exports (
    vault        VARCHAR NOT NULL,          -- resolved path of the vault folder
    arxiv_id     VARCHAR NOT NULL,
    file         VARCHAR NOT NULL,          -- note file name inside Octet/Papers/
    notes_sha    VARCHAR,                   -- sha256 of the normalized `## My notes` text written
    state        VARCHAR,                   -- reading state written into the frontmatter
    rating       INTEGER,                   -- rating written into the frontmatter
    exported_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (vault, arxiv_id)
);

-- BibTeX citation keys: assigned once, so a key never changes between exports.
CREATE TABLE citation_keys (
    arxiv_id      VARCHAR PRIMARY KEY,
    citation_key  VARCHAR NOT NULL UNIQUE,
    assigned_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
