-- Attachments (issue 18): a message's files travel inside it, as they do
-- in Redis: the column holds a protobuf `chat.v1.AttachmentList` (what each
-- file is, its size, its blobs), NULL for a message with none (most), so
-- scrollback and search give back exactly what the live message showed.
-- Never searched or filtered on: one opaque value read with its row.
ALTER TABLE messages ADD COLUMN attachments bytea;
