-- People, beside rooms (issue 17): who exists, the direct conversations,
-- each user's rooms with their read marker, and the messages that mention
-- them. Redis is the fast path for all of it; these tables are the
-- write-through copy a room-service loads a user (or a direct conversation)
-- back from when Redis has lost it. Unread counts are not stored anywhere:
-- they are a room's last seq minus the user's marker.

-- A user exists once one of their members joined a room (or they opened a
-- direct conversation). The name is the one they last joined with.
CREATE TABLE profiles (
    user_id    text        PRIMARY KEY,
    name       text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A direct conversation: the room named after its members' sorted user
-- ids ("dm-" + 40 hex), with who they are. Two parallel arrays rather than
-- a row per member: the record is written once, whole, never edited (the
-- name is a function of the members), and always read whole, so one row is
-- one index probe and one tuple. The member count is the wire's 2..=8.
CREATE TABLE directs (
    room       text        PRIMARY KEY,
    user_ids   text[]      NOT NULL,
    names      text[]      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(user_ids) BETWEEN 2 AND 8 AND cardinality(names) = cardinality(user_ids))
);

-- A user's rooms (public rooms and direct conversations alike; the kind
-- is in the name). The primary key leads with the user: every read is one
-- user's rooms, or one of them.
CREATE TABLE user_rooms (
    user_id      text   NOT NULL,
    room         text   NOT NULL,
    -- The user has read every message up to this seq; it only moves forward.
    read_seq     bigint NOT NULL CHECK (read_seq >= 0),
    -- When the room became theirs, ms since the Unix epoch.
    joined_at_ms bigint NOT NULL,
    PRIMARY KEY (user_id, room)
);

-- Messages (by seq) that mention the user in one of their rooms. Only ever
-- for a room that is theirs: the foreign key makes taking a room off a
-- user's rooms take its mentions with it (ON DELETE CASCADE), so no
-- mention outlives its room. Rows at or below the marker are deleted when
-- the marker passes them; readers also ignore any left above a marker.
CREATE TABLE mentions (
    user_id text   NOT NULL,
    room    text   NOT NULL,
    seq     bigint NOT NULL CHECK (seq > 0),
    PRIMARY KEY (user_id, room, seq),
    FOREIGN KEY (user_id, room) REFERENCES user_rooms (user_id, room) ON DELETE CASCADE
);
