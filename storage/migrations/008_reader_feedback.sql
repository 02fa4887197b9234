-- The reader's thumbs up / down on any paper card: what the Inbox's "for you" order learns
-- from, beside ratings, the queue, reads and dismissals (table `reading`). One row per paper;
-- taking a thumb back deletes the row.
CREATE TABLE reader_feedback (
    arxiv_id    VARCHAR PRIMARY KEY,
    thumb       SMALLINT NOT NULL CHECK (thumb IN (-1, 1)),   -- 1 more like this, -1 less
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
