-- A message's later life: edits, deletes and reactions, and replies.
--
-- A change (an edit, a delete, a reaction added or removed) is a stored
-- event with its own seq in the room's order, like a message, so it is a
-- row of `messages` too: scrollback and resume read it back, numbering and
-- the high-water mark count it, and `ON CONFLICT (room, seq) DO NOTHING`
-- stores it once. What marks it is `action`; its target's row holds the
-- message's state as it now stands (what a page shows), which the store's
-- append brings up to date when it inserts a change row (store/changes.rs).
ALTER TABLE messages
    -- Change rows: 'edit', 'delete' or 'react'; NULL for a message.
    ADD COLUMN action        text,
    -- Change rows: the seq of the message changed.
    ADD COLUMN target_seq    bigint,
    -- Change rows: the whole `chat.v1.MessageChange` (protobuf), but for an
    -- edit's text, which is `body` (so a delete can blank it, and nothing
    -- of a deleted message's text stays in the store).
    ADD COLUMN change        bytea,
    -- The sender's user id (a change row: the changer's).
    ADD COLUMN user_id       text    NOT NULL DEFAULT '',
    -- A reply: the message it answers as a `chat.v1.ReplyTo` (protobuf)
    -- without its quote, that message's seq (to find the replies to it),
    -- the quote, and whether that message has been deleted since (the
    -- quote is then ''). NULL, NULL, NULL, false for a message that answers
    -- none.
    ADD COLUMN reply         bytea,
    ADD COLUMN reply_seq     bigint,
    ADD COLUMN reply_quote   text,
    ADD COLUMN reply_deleted boolean NOT NULL DEFAULT false,
    -- When the text was last edited (0: never), and the seq of the edit
    -- that set it: an older edit stored late never overwrites a newer one.
    ADD COLUMN edited_ms     bigint  NOT NULL DEFAULT 0,
    ADD COLUMN edited_seq    bigint  NOT NULL DEFAULT 0,
    -- When it was deleted (0: it was not), and by which moderator ('' : by
    -- its sender). On a 'delete' change row: who the target's deleted_by
    -- becomes.
    ADD COLUMN deleted_ms    bigint  NOT NULL DEFAULT 0,
    ADD COLUMN deleted_by    text    NOT NULL DEFAULT '',
    -- Its reactions, in the order each emoji was (last) first added: two
    -- parallel arrays, a copy of `reaction_counts` kept for reads (NULL:
    -- none yet).
    ADD COLUMN reaction_emoji text[],
    ADD COLUMN reaction_count integer[],
    ADD CONSTRAINT messages_change_shape CHECK (
        (action IS NULL) = (target_seq IS NULL) AND (action IS NULL) = (change IS NULL)
        AND (action IS NULL OR action IN ('edit', 'delete', 'react'))
    );

-- A message's changes, by target: earlier edits to blank when it is
-- deleted, and changes stored before it that apply when it arrives.
CREATE INDEX messages_changes ON messages (room, target_seq) WHERE target_seq IS NOT NULL;
-- Replies, by the message they answer: their quotes go when it is deleted.
CREATE INDEX messages_replies ON messages (room, reply_seq) WHERE reply_seq IS NOT NULL;

-- Each emoji's count on a message, from the newest reaction change of it
-- the store has (`changed_seq`): a change stored late, older than the one
-- that set the count, changes nothing. A count of 0 stays as a row (it
-- guards the same way) and is not shown. Rows exist for a target not
-- stored yet too, so its count is right when it arrives.
CREATE TABLE reaction_counts (
    room        text    NOT NULL,
    -- The message's seq.
    seq         bigint  NOT NULL,
    emoji       text    NOT NULL,
    count       integer NOT NULL CHECK (count >= 0),
    -- The change the count is from; 0 when it came with the message itself
    -- (a message copied from Redis after it was reacted to).
    changed_seq bigint  NOT NULL,
    -- Its place among the message's emoji: the newest change that took it
    -- from none to one (NULL until such a change is stored: its
    -- `changed_seq` places it meanwhile).
    since_seq   bigint,
    PRIMARY KEY (room, seq, emoji)
);

-- Who put which emoji on a message (so a page can say `mine`), from the
-- newest change of that user and emoji: `added` false once taken away (the
-- row stays, to guard against an older add stored late).
CREATE TABLE message_reactions (
    room        text    NOT NULL,
    seq         bigint  NOT NULL,
    user_id     text    NOT NULL,
    emoji       text    NOT NULL,
    added       boolean NOT NULL,
    changed_seq bigint  NOT NULL,
    PRIMARY KEY (room, seq, user_id, emoji)
);
