-- Every message a room stored, kept for good: what a `message` frame
-- carries, keyed by the room's own sequence number. Redis holds a room's
-- recent history and numbers its messages; this table is the record the
-- archiver copies them into (idempotent by (room, seq)) and that scrollback
-- and search read from.
CREATE TABLE messages (
    room      text   NOT NULL,
    -- The room's sequence number: 1, 2, 3… with no gap while the room's
    -- epoch lasts, and continued from here when Redis lost the room.
    seq       bigint NOT NULL CHECK (seq > 0),
    -- The room's history id when the message was stored.
    epoch     text   NOT NULL,
    -- When the room-service accepted it, ms since the Unix epoch.
    ts_ms     bigint NOT NULL,
    -- The sender's member id (empty for system messages) and display name.
    member_id text   NOT NULL,
    username  text   NOT NULL,
    -- The message text (the frame's `text`; named `body` to read apart from
    -- the type).
    body      text   NOT NULL,
    -- The sender's own id for the message (retries are dropped by it).
    client_id text   NOT NULL,
    -- The words of the text for full-text search. `simple`: lowercased
    -- words, no stemming and no stop words, so it works the same for any
    -- language (`english` would stem Greek or Russian as if English).
    words     tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED,
    -- Scrollback and the high-water mark are ranges of this index:
    -- `WHERE room = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3` at any depth.
    PRIMARY KEY (room, seq)
);

-- Search: which messages hold every word of a query; the room and the
-- cursor filter what it finds.
CREATE INDEX messages_words ON messages USING gin (words);

-- Retention: the oldest messages of every room, a small batch at a time.
CREATE INDEX messages_ts_ms ON messages (ts_ms);
