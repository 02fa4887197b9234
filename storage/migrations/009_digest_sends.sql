-- Digests that went out: one row per week, channel and recipient, written only after the
-- server accepted the message. The once-per-week rule reads it; `octet digest --send
-- --force` sends again and counts the send. The recipient is an e-mail address, or a
-- webhook's host and a digest of its full URL (a webhook URL is a secret: never stored).
CREATE TABLE digest_sends (
    week        VARCHAR NOT NULL,
    channel     VARCHAR NOT NULL CHECK (channel IN ('email', 'webhook')),
    recipient   VARCHAR NOT NULL,
    sent_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    message_id  VARCHAR,
    sends       INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (week, channel, recipient)
);
