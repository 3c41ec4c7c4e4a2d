-- Where each room's numbering stands: its epoch and the highest seq the
-- store has taken for it. When Redis loses a room (a restart with no data,
-- FLUSHALL, eviction, ROOM_TTL_SECS), the room-service seeds Redis from
-- this row, so the room keeps its epoch and its next message is one above
-- the last instead of starting over at 1.
--
-- A table of its own rather than "the newest row of messages": retention
-- (HISTORY_RETENTION_DAYS) may delete every message of a quiet room, and
-- the room must still not hand out those seqs again, nor change its epoch.
-- The archiver's append keeps it up to date in the same statement as the
-- messages (one upsert per room per batch, only ever moving forward).
CREATE TABLE rooms (
    room     text   PRIMARY KEY,
    -- The epoch of the room's newest stored message.
    epoch    text   NOT NULL,
    -- The highest seq stored for the room, kept when its rows are deleted.
    last_seq bigint NOT NULL CHECK (last_seq >= 0)
);

-- Rooms archived before this table existed.
INSERT INTO rooms (room, epoch, last_seq)
SELECT DISTINCT ON (room) room, epoch, seq FROM messages ORDER BY room, seq DESC;
