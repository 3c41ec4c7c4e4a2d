-- Attachments' records, beside the messages that carry them: the durable
-- copy of what Redis keeps under `chat:{at:<id>}`, written through at
-- Attach and at every claim and release. Redis is the fast path and may be
-- flushed; this table is what says an attachment exists, who posted it,
-- and which attachments still use a blob (the sweep's authority before it
-- deletes bytes).
CREATE TABLE attachments (
    id            text   PRIMARY KEY,
    room          text   NOT NULL,
    user_id       text   NOT NULL,
    -- The file's and the thumbnail's blob (SHA-256 in hex); no thumbnail:
    -- NULL.
    blob          text   NOT NULL,
    thumb_blob    text,
    -- Upload time, ms since the Unix epoch, on the recording room-service's
    -- clock (the one the sweep compares with the upload TTL).
    uploaded_ms   bigint NOT NULL,
    -- The message that posted it: its sender member id and client id, both
    -- NULL while unposted (a retry of that send claims it again).
    poster_member text,
    poster_client text,
    -- The whole `chat.v1.Attachment`, protobuf: what GetAttachment answers.
    record        bytea  NOT NULL,
    CHECK ((poster_member IS NULL) = (poster_client IS NULL))
);

-- The sweep's list: unposted attachments by upload time. Partial: posted
-- ones (nearly all, over time) are not in it.
CREATE INDEX attachments_unposted ON attachments (uploaded_ms) WHERE poster_member IS NULL;
-- "Which attachments use blob B": as a file, or as a thumbnail.
CREATE INDEX attachments_blob ON attachments (blob);
CREATE INDEX attachments_thumb_blob ON attachments (thumb_blob) WHERE thumb_blob IS NOT NULL;

-- Blobs a gateway stored whose Attach was refused (not in the room, bad
-- metadata): nothing may reference them, but the same bytes (blobs are
-- content-addressed) may be a recorded attachment's. The sweep deletes one
-- once it is older than the upload TTL and no attachment uses it.
CREATE TABLE blob_candidates (
    blob     text   PRIMARY KEY,
    since_ms bigint NOT NULL
);
CREATE INDEX blob_candidates_since ON blob_candidates (since_ms);
