-- A moderator's action (mute, kick, ban, a role given...) is a stored
-- event at its own seq, like a change of a message: kept as a row of
-- `messages` so the room's numbering has no gap (resume, pages and seeding
-- read seqs as contiguous), with the ModerationNotice protobuf in `change`
-- and target_seq 0 (it changes no message).
ALTER TABLE messages
    DROP CONSTRAINT messages_change_shape,
    ADD CONSTRAINT messages_change_shape CHECK (
        (action IS NULL) = (target_seq IS NULL) AND (action IS NULL) = (change IS NULL)
        AND (action IS NULL OR action IN ('edit', 'delete', 'react', 'moderation'))
    );
