//! How a change reaches the message it changes, inside the append's
//! transaction (see [`append`](super::append) for why that is safe with
//! several writers at once).
//!
//! A change row is inserted like any event; if it is new (not a copy of
//! one already stored), [`apply`] brings its target's row up to date:
//! - an edit: the target's `body` becomes the newest stored edit's text,
//!   `edited_ms` its time (`edited_seq` guards: an older edit stored late
//!   changes nothing), unless the target is deleted;
//! - a delete: the target loses its text, files and reply, and gets
//!   `deleted_ms` and `deleted_by`; every reply to it loses its quote
//!   (`reply_deleted`), and every edit of it its text, so none of the
//!   words stay in the store (nor in the search index, which follows
//!   `body`);
//! - a reaction: the emoji's count in `reaction_counts` becomes the
//!   change's, unless a newer change of that emoji is stored already, the
//!   user's row in `message_reactions` says whether they have it (guarded
//!   the same way), and the target's reaction arrays are rewritten from
//!   `reaction_counts`.
//!
//! Changes may be stored in any order, and before their target (a batch
//! the archiver wrote late, a catch-up from Redis): each is applied from
//! what is stored, so the end state is the same whatever the order. A
//! change whose target is not stored yet is kept (and its counts
//! recorded); when the target arrives, the same steps run for it. A reply
//! stored after the message it quotes was deleted loses its quote then.

use std::collections::{BTreeMap, BTreeSet};

use chat_proto::v1::message_change::Change;
use sqlx::{PgConnection, Row};

use super::{StoreError, StoredMessage, bounds};

/// A message's reactions, as given with it (a message copied from Redis
/// after people reacted to it), in its own order: placed before every
/// change's seq, and overridden by any change stored for the same emoji.
const SEED_COUNTS: &str = "
    INSERT INTO reaction_counts (room, seq, emoji, count, changed_seq, since_seq)
    SELECT room, seq, emoji, count, 0, since_seq
    FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::int[], $5::bigint[])
        AS s (room, seq, emoji, count, since_seq)
    ORDER BY 1, 2, 3
    ON CONFLICT (room, seq, emoji) DO NOTHING";

/// One row per (message, emoji): the newest change of the batch for it.
const COUNTS: &str = "
    INSERT INTO reaction_counts AS r (room, seq, emoji, count, changed_seq, since_seq)
    SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::int[], $5::bigint[], $6::bigint[])
    ORDER BY 1, 2, 3
    ON CONFLICT (room, seq, emoji) DO UPDATE SET
        count = CASE WHEN EXCLUDED.changed_seq > r.changed_seq THEN EXCLUDED.count ELSE r.count END,
        changed_seq = GREATEST(r.changed_seq, EXCLUDED.changed_seq),
        since_seq = GREATEST(r.since_seq, EXCLUDED.since_seq)";

/// One row per (message, user, emoji): the newest change of the batch.
const USERS: &str = "
    INSERT INTO message_reactions AS r (room, seq, user_id, emoji, added, changed_seq)
    SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bool[], $6::bigint[])
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (room, seq, user_id, emoji) DO UPDATE SET added = EXCLUDED.added, changed_seq = EXCLUDED.changed_seq
        WHERE r.changed_seq < EXCLUDED.changed_seq";

/// Which of the new messages have changes stored already.
const PENDING: &str = "
    SELECT DISTINCT c.room, c.target_seq FROM messages c
    JOIN UNNEST($1::text[], $2::bigint[]) AS t (room, seq) ON c.room = t.room AND c.target_seq = t.seq";

/// The targets ($1, $2) as rows `t`.
const TARGETS: &str = "(SELECT DISTINCT * FROM UNNEST($1::text[], $2::bigint[]) AS u (room, seq)) AS t";

/// Targets with a stored delete (their first) mark their rows deleted.
fn delete_targets() -> String {
    format!(
        "UPDATE messages m SET body = '', attachments = NULL, reply = NULL, reply_seq = NULL, reply_quote = NULL,
             reply_deleted = false, deleted_ms = d.ts_ms, deleted_by = d.deleted_by
         FROM (SELECT DISTINCT ON (c.room, c.target_seq) c.room, c.target_seq, c.ts_ms, c.deleted_by
               FROM messages c JOIN {TARGETS} ON c.room = t.room AND c.target_seq = t.seq
               WHERE c.action = 'delete' ORDER BY c.room, c.target_seq, c.seq) AS d
         WHERE m.room = d.room AND m.seq = d.target_seq AND m.action IS NULL AND m.deleted_ms = 0"
    )
}

/// The targets that are deleted: by a stored delete, or as they were
/// stored (a message copied from Redis after its deletion).
fn gone() -> String {
    format!(
        "(SELECT t.room, t.seq FROM {TARGETS}
          WHERE EXISTS (SELECT 1 FROM messages c WHERE c.room = t.room AND c.target_seq = t.seq AND c.action = 'delete')
             OR EXISTS (SELECT 1 FROM messages m WHERE m.room = t.room AND m.seq = t.seq AND m.action IS NULL
                                                   AND m.deleted_ms > 0)) AS g"
    )
}

fn blank_quotes() -> String {
    format!(
        "UPDATE messages r SET reply_quote = '', reply_deleted = true FROM {}
         WHERE r.room = g.room AND r.reply_seq = g.seq AND r.action IS NULL AND NOT r.reply_deleted",
        gone()
    )
}

fn blank_edits() -> String {
    format!(
        "UPDATE messages e SET body = '' FROM {}
         WHERE e.room = g.room AND e.target_seq = g.seq AND e.action = 'edit' AND e.body <> ''",
        gone()
    )
}

/// The newest stored edit of each target, unless it is deleted or has a
/// newer one already.
fn apply_edits() -> String {
    format!(
        "UPDATE messages m SET body = e.body, edited_ms = e.ts_ms, edited_seq = e.seq
         FROM (SELECT DISTINCT ON (c.room, c.target_seq) c.room, c.target_seq, c.seq, c.ts_ms, c.body
               FROM messages c JOIN {TARGETS} ON c.room = t.room AND c.target_seq = t.seq
               WHERE c.action = 'edit' ORDER BY c.room, c.target_seq, c.seq DESC) AS e
         WHERE m.room = e.room AND m.seq = e.target_seq AND m.action IS NULL AND m.deleted_ms = 0
           AND m.edited_seq < e.seq"
    )
}

/// Each target's reaction arrays from `reaction_counts`: emoji with a
/// count, in the order each was (last) first added. Rows already right
/// are not rewritten.
fn copy_reactions() -> String {
    format!(
        "UPDATE messages m SET reaction_emoji = x.emoji, reaction_count = x.count
         FROM (SELECT t.room, t.seq,
                      array_agg(r.emoji ORDER BY coalesce(r.since_seq, r.changed_seq), r.emoji COLLATE \"C\")
                          FILTER (WHERE r.count > 0) AS emoji,
                      array_agg(r.count ORDER BY coalesce(r.since_seq, r.changed_seq), r.emoji COLLATE \"C\")
                          FILTER (WHERE r.count > 0) AS count
               FROM {TARGETS} LEFT JOIN reaction_counts r ON r.room = t.room AND r.seq = t.seq
               GROUP BY t.room, t.seq) AS x
         WHERE m.room = x.room AND m.seq = x.seq AND m.action IS NULL
           AND (m.reaction_emoji, m.reaction_count) IS DISTINCT FROM (x.emoji, x.count)"
    )
}

/// Applies the batch's `new` rows (those the insert did not skip).
pub(super) async fn apply(conn: &mut PgConnection, new: &[&StoredMessage]) -> Result<(), StoreError> {
    let (changes, messages): (Vec<&StoredMessage>, Vec<&StoredMessage>) = new.iter().partition(|m| m.is_change());
    // Messages (room, seq) whose state the steps below bring up to date.
    let mut targets: BTreeSet<(String, i64)> = BTreeSet::new();
    for change in &changes {
        targets.insert((change.room.clone(), bounds::seq(change.target_seq().unwrap_or_default())?));
    }
    for message in &messages {
        if let Some(reply) = &message.reply_to {
            // Its quote goes if that message is deleted already.
            targets.insert((message.room.clone(), bounds::seq(reply.seq)?));
        }
        if !message.reactions.is_empty() {
            targets.insert((message.room.clone(), bounds::seq(message.seq)?));
        }
    }
    seed_counts(conn, &messages).await?;
    record_reactions(conn, &changes).await?;
    if !messages.is_empty() {
        let (rooms, seqs) = unzip(messages.iter().map(|m| Ok((m.room.clone(), bounds::seq(m.seq)?))))?;
        let rows = sqlx::query(PENDING).bind(rooms).bind(seqs).fetch_all(&mut *conn).await?;
        for row in rows {
            targets.insert((row.try_get("room")?, row.try_get("target_seq")?));
        }
    }
    if targets.is_empty() {
        return Ok(());
    }
    let (rooms, seqs): (Vec<String>, Vec<i64>) = targets.into_iter().unzip();
    // Deletes first: an edit never applies to a deleted message.
    for statement in [delete_targets(), blank_quotes(), blank_edits(), apply_edits(), copy_reactions()] {
        sqlx::query(&statement).bind(&rooms).bind(&seqs).execute(&mut *conn).await?;
    }
    Ok(())
}

fn unzip(
    pairs: impl Iterator<Item = Result<(String, i64), StoreError>>,
) -> Result<(Vec<String>, Vec<i64>), StoreError> {
    Ok(pairs.collect::<Result<Vec<_>, _>>()?.into_iter().unzip())
}

/// Reactions that came with new messages, as `reaction_counts` rows.
async fn seed_counts(conn: &mut PgConnection, messages: &[&StoredMessage]) -> Result<(), StoreError> {
    let (mut room, mut seq, mut emoji, mut count, mut since) = (vec![], vec![], vec![], vec![], vec![]);
    let mut seen = BTreeSet::new();
    for m in messages {
        for (place, r) in (0_i64..).zip(&m.reactions) {
            if !seen.insert((&m.room, m.seq, &r.emoji)) {
                continue;
            }
            room.push(m.room.as_str());
            seq.push(bounds::seq(m.seq)?);
            emoji.push(r.emoji.as_str());
            count.push(i32::try_from(r.count).unwrap_or(i32::MAX));
            // Before any change's seq (every seq is above 0), in order.
            since.push(place - i64::from(u16::MAX));
        }
    }
    if room.is_empty() {
        return Ok(());
    }
    sqlx::query(SEED_COUNTS).bind(room).bind(seq).bind(emoji).bind(count).bind(since).execute(conn).await?;
    Ok(())
}

/// The batch's reaction changes into `reaction_counts` and
/// `message_reactions`, one row per key (an upsert may touch a row once).
async fn record_reactions(conn: &mut PgConnection, changes: &[&StoredMessage]) -> Result<(), StoreError> {
    let Reactions { counts, users } = reactions(changes)?;
    if counts.is_empty() {
        return Ok(());
    }
    let (mut room, mut seq, mut emoji, mut count, mut changed, mut since) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for ((r, s, e), c) in &counts {
        room.push(r.as_str());
        seq.push(*s);
        emoji.push(e.as_str());
        count.push(c.count);
        changed.push(c.changed_seq);
        since.push(c.since_seq);
    }
    sqlx::query(COUNTS)
        .bind(room)
        .bind(seq)
        .bind(emoji)
        .bind(count)
        .bind(changed)
        .bind(since)
        .execute(&mut *conn)
        .await?;
    let (mut room, mut seq, mut user, mut emoji, mut added, mut changed) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for ((r, s, u, e), (a, c)) in &users {
        room.push(r.as_str());
        seq.push(*s);
        user.push(u.as_str());
        emoji.push(e.as_str());
        added.push(*a);
        changed.push(*c);
    }
    sqlx::query(USERS).bind(room).bind(seq).bind(user).bind(emoji).bind(added).bind(changed).execute(conn).await?;
    Ok(())
}

/// An emoji's count on a message after the newest change of it in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Count {
    count: i32,
    /// The seq of that change.
    changed_seq: i64,
    /// The newest change that took it from none to one, if any.
    since_seq: Option<i64>,
}

/// (room, message seq, emoji).
type CountKey = (String, i64, String);
/// (room, message seq, user id, emoji).
type UserKey = (String, i64, String, String);

/// A batch's reaction changes, the newest per key.
#[derive(Debug, Default)]
struct Reactions {
    counts: BTreeMap<CountKey, Count>,
    /// Whether the user has it, after the change of which seq.
    users: BTreeMap<UserKey, (bool, i64)>,
}

/// The batch's reaction changes, newest per (message, emoji) and per
/// (message, user, emoji).
fn reactions(changes: &[&StoredMessage]) -> Result<Reactions, StoreError> {
    let Reactions { mut counts, mut users } = Reactions::default();
    for m in changes {
        let Some(change) = &m.change else { continue };
        let Some(Change::Reacted(reacted)) = &change.change else { continue };
        let (target, seq) = (bounds::seq(change.target_seq)?, bounds::seq(m.seq)?);
        let count = i32::try_from(reacted.count).unwrap_or(i32::MAX);
        let since = (reacted.added && reacted.count == 1).then_some(seq);
        let entry = counts.entry((m.room.clone(), target, reacted.emoji.clone())).or_insert(Count {
            count,
            changed_seq: seq,
            since_seq: since,
        });
        if seq > entry.changed_seq {
            (entry.count, entry.changed_seq) = (count, seq);
        }
        entry.since_seq = entry.since_seq.max(since);
        // Whose: the user, or for a change without one, the member.
        let user = if change.user_id.is_empty() { &change.member_id } else { &change.user_id };
        let entry =
            users.entry((m.room.clone(), target, user.clone(), reacted.emoji.clone())).or_insert((reacted.added, seq));
        if seq > entry.1 {
            *entry = (reacted.added, seq);
        }
    }
    Ok(Reactions { counts, users })
}

#[cfg(test)]
mod tests {
    use chat_proto::v1::{MessageChange, Reacted};

    use super::*;

    fn react(seq: u64, user: &str, emoji: &str, added: bool, count: u32) -> StoredMessage {
        StoredMessage {
            room: "r".into(),
            seq,
            change: Some(MessageChange {
                target_seq: 1,
                user_id: user.into(),
                change: Some(Change::Reacted(Reacted { emoji: emoji.into(), added, count })),
                ..MessageChange::default()
            }),
            ..StoredMessage::default()
        }
    }

    #[test]
    fn the_newest_change_of_an_emoji_wins_in_any_order() {
        let batch = [react(5, "b", "👍", true, 2), react(3, "a", "👍", true, 1), react(7, "a", "👍", false, 1)];
        let refs: Vec<&StoredMessage> = batch.iter().collect();
        let Reactions { counts, users } = reactions(&refs).expect("in range");
        assert_eq!(
            counts.get(&("r".into(), 1, "👍".into())),
            Some(&Count { count: 1, changed_seq: 7, since_seq: Some(3) })
        );
        assert_eq!(users.get(&("r".into(), 1, "a".into(), "👍".into())), Some(&(false, 7)), "a took theirs away");
        assert_eq!(users.get(&("r".into(), 1, "b".into(), "👍".into())), Some(&(true, 5)));
    }
}
