//! Edit, Delete and React: changes to a stored message, each stored as an
//! event of its own in the room's order.

use chat_proto::v1::{ChangeResponse, DeleteRequest, EditRequest, ReactRequest};
use tonic::Status;

use super::Rooms;
use crate::broker::Broker;
use crate::people::Directory;

impl<B: Broker + Directory> Rooms<B> {
    pub(super) async fn edit_message(&self, _request: EditRequest) -> Result<ChangeResponse, Status> {
        Err(Status::unimplemented("Edit is being built"))
    }

    pub(super) async fn delete_message(&self, _request: DeleteRequest) -> Result<ChangeResponse, Status> {
        Err(Status::unimplemented("Delete is being built"))
    }

    pub(super) async fn react_to_message(&self, _request: ReactRequest) -> Result<ChangeResponse, Status> {
        Err(Status::unimplemented("React is being built"))
    }
}
