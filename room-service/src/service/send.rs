//! Send and SendBatch: messages checked, their attachments claimed and
//! the message they answer quoted, then stored and published in one broker
//! step (a room Redis lost seeded first), with STORE_SYNC committed before
//! the answer; the inbox hears of what was stored.

use chat_proto::limits::SEND_BATCH;
use chat_proto::v1::room_event::Kind;
use chat_proto::v1::{BatchedMessage, ChatMessage, SendBatchRequest, SendBatchResponse, SendRequest, SendResponse};
use chat_proto::{MemberId, RoomName, names};
use tonic::Status;
use tracing::Instrument;

use super::{Rooms, invalid, new_event};
use crate::attachments::claim::{check_ids, claim_all, release_all};
use crate::attachments::{Poster, Records};
use crate::broker::{Broker, Outgoing, Stored};
use crate::people::Directory;

impl<B: Broker + Directory + Records> Rooms<B> {
    pub(super) async fn send_message(&self, request: SendRequest) -> Result<SendResponse, Status> {
        let SendRequest { room, member_id, text, client_id, attachment_ids, user_id, reply_to_seq } = request;
        let room = RoomName::try_from(room).map_err(invalid)?;
        // With attachments the text may be empty (its length still counts).
        if attachment_ids.is_empty() || !text.trim().is_empty() {
            names::check_text(&text).map_err(invalid)?;
        }
        names::check_client_id(&client_id).map_err(invalid)?;
        check_ids(&attachment_ids, &user_id)?;
        let sender = match member_id.as_str() {
            "" => None,
            id => Some(MemberId::try_from(id).map_err(invalid)?),
        };
        let reply_to = self.reply_to(&room, reply_to_seq).await?;
        let poster = Poster { member_id: member_id.clone(), client_id: client_id.clone() };
        let attachments = match attachment_ids.is_empty() {
            true => Vec::new(),
            false => claim_all(&*self.attachments, &room, &user_id, &poster, &attachment_ids).await?,
        };
        // The sender's name is filled in by the broker, in the same step
        // that checks it is a member.
        let message = ChatMessage {
            username: String::new(),
            member_id: member_id.clone(),
            text,
            client_id: client_id.clone(),
            attachments,
            user_id: user_id.clone(),
            reply_to,
            ..ChatMessage::default()
        };
        let claimed = message.attachments.clone();
        let event = new_event(&room, Kind::Message(message));
        let outgoing = vec![Outgoing { client_id, event }];
        let stored = match self.append(&room, sender.as_ref(), outgoing).await {
            Ok(stored) => stored,
            Err(status) => {
                // Not a member: nothing was stored, so nothing posted them.
                // (After any other failure the message may be stored: the
                // claims stay, for the retry with this client id.)
                if status.code() == tonic::Code::FailedPrecondition {
                    release_all(&*self.attachments, &poster, &claimed).await;
                }
                return Err(status);
            }
        };
        self.inbox.after_send(&room, sender.as_ref(), &stored);
        let stored = stored.into_iter().next().ok_or_else(|| Status::internal("the broker stored nothing"))?;
        if !stored.repeat {
            self.metrics.published("message");
        }
        tracing::debug!(seq = stored.event.seq, repeat = stored.repeat, "message stored");
        Ok(SendResponse { event: Some(stored.event), repeat: stored.repeat })
    }

    pub(super) async fn send_messages(&self, request: SendBatchRequest) -> Result<SendBatchResponse, Status> {
        let SendBatchRequest { room, member_id, messages, user_id } = request;
        let room = RoomName::try_from(room).map_err(invalid)?;
        let sender = MemberId::try_from(member_id.as_str()).map_err(invalid)?;
        if messages.is_empty() || messages.len() > SEND_BATCH {
            return Err(Status::invalid_argument(format!(
                "a batch of {} messages: send 1 to {SEND_BATCH}",
                messages.len()
            )));
        }
        let mut outgoing = Vec::with_capacity(messages.len());
        for BatchedMessage { text, client_id, reply_to_seq } in messages {
            names::check_text(&text).map_err(invalid)?;
            names::check_client_id(&client_id).map_err(invalid)?;
            let reply_to = self.reply_to(&room, reply_to_seq).await?;
            let message = ChatMessage {
                username: String::new(),
                member_id: member_id.clone(),
                text,
                client_id: client_id.clone(),
                user_id: user_id.clone(),
                reply_to,
                ..ChatMessage::default()
            };
            outgoing.push(Outgoing { client_id, event: new_event(&room, Kind::Message(message)) });
        }
        let stored = self.append(&room, Some(&sender), outgoing).await?;
        self.inbox.after_send(&room, Some(&sender), &stored);
        for _ in stored.iter().filter(|s| !s.repeat) {
            self.metrics.published("message");
        }
        tracing::debug!(messages = stored.len(), "messages stored");
        let (events, repeats) = stored.into_iter().map(|s| (s.event, s.repeat)).unzip();
        Ok(SendBatchResponse { events, repeats })
    }
}

impl<B: Broker + Directory> Rooms<B> {
    /// Stores messages; a room Redis lost is seeded first (with a store).
    /// With STORE_SYNC, returns once the store committed them too.
    /// With traces on, the broker step and the commit each get a span
    /// (`crate::traced`), and the events carry the call's context.
    pub(super) async fn append(
        &self,
        room: &RoomName,
        sender: Option<&MemberId>,
        mut outgoing: Vec<Outgoing>,
    ) -> Result<Vec<Stored>, Status> {
        if !self.traced {
            return self.append_untraced(room, sender, outgoing).await;
        }
        crate::traced::stamp(outgoing.iter_mut().map(|o| &mut o.event));
        let place = self.reserve_commit()?;
        let step = tracing::info_span!(
            "broker",
            otel.name = B::APPEND_STEP,
            otel.kind = "client",
            room = room.as_str(),
            messages = outgoing.len(),
        );
        let stored = self.store_and_publish(room, sender, outgoing).instrument(step).await?;
        if place.is_some() {
            let commit = tracing::info_span!(
                "store",
                otel.name = "postgres commit",
                otel.kind = "client",
                db.system = "postgresql",
                messages = stored.len()
            );
            Self::commit(place, &stored).instrument(commit).await?;
        }
        Ok(stored)
    }

    async fn append_untraced(
        &self,
        room: &RoomName,
        sender: Option<&MemberId>,
        outgoing: Vec<Outgoing>,
    ) -> Result<Vec<Stored>, Status> {
        let place = self.reserve_commit()?;
        let stored = self.store_and_publish(room, sender, outgoing).await?;
        Self::commit(place, &stored).await?;
        Ok(stored)
    }

    /// The broker's one step: store the messages and publish them.
    async fn store_and_publish(
        &self,
        room: &RoomName,
        sender: Option<&MemberId>,
        outgoing: Vec<Outgoing>,
    ) -> Result<Vec<Stored>, Status> {
        let stored = match &self.seeder {
            // Each attempt takes its own copy: a refused one stored nothing.
            Some(seeder) => seeder.retry(room, || self.broker.append_messages(room, sender, outgoing.clone())).await?,
            None => self.broker.append_messages(room, sender, outgoing).await,
        };
        stored.map_err(|e| self.failed(e))
    }
}
