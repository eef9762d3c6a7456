//! The field readers the commands share: a frame's fields into an action's own struct, and
//! the fields several actions take (`room`, `text`, `clientMsgId`, a user id), each checked
//! against its limit the same way wherever it appears.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{Config, Limits};
use crate::error::{ClientError, ErrorCode};
use crate::model::{RoomName, UserId};

/// Deserialises the fields of one action; serde's messages ("missing field `room`",
/// "invalid type: integer `5`, expected a string") are clear enough to pass on.
pub(crate) fn read<T: DeserializeOwned>(fields: Value) -> Result<T, ClientError> {
    serde_json::from_value(fields).map_err(|error| ClientError::bad_request(error.to_string()))
}

/// The `room` field, the one field of `join`, `leave`, `who` and `createRoom`.
pub(crate) fn room(frame: Value, config: &Config) -> Result<RoomName, ClientError> {
    #[derive(serde::Deserialize)]
    struct Fields {
        room: String,
    }
    let Fields { room } = read(frame)?;
    RoomName::parse(&room, config.limits.room_name_chars)
}

/// The `text` of a message: not blank, at most `Limits::text_bytes`.
pub(crate) fn text(text: String, limits: &Limits) -> Result<String, ClientError> {
    if text.trim().is_empty() {
        return Err(ClientError::bad_request("text must not be empty"));
    }
    if text.len() > limits.text_bytes {
        return Err(ClientError::new(
            ErrorCode::TooLarge,
            format!("text is {} bytes; the limit is {}", text.len(), limits.text_bytes),
        ));
    }
    Ok(text)
}

/// The client's own id for a message, echoed in the `ack`: bounded, as we send it back.
pub(crate) fn client_msg_id(id: Option<String>, limits: &Limits) -> Result<Option<String>, ClientError> {
    match id {
        Some(id) if id.is_empty() || id.chars().count() > limits.client_msg_id_chars => Err(ClientError::bad_request(
            format!("clientMsgId must be 1 to {} characters", limits.client_msg_id_chars),
        )),
        id => Ok(id),
    }
}

/// A user id is opaque (a JWT `sub`), but it is echoed and used in keys: bound it.
const USER_ID_BYTES: usize = 256;

/// A user id the client named in `field`.
pub(crate) fn user_id(field: &str, user: String) -> Result<UserId, ClientError> {
    if user.is_empty() || user.len() > USER_ID_BYTES {
        return Err(ClientError::bad_request(format!(
            "{field} must be 1 to {USER_ID_BYTES} bytes"
        )));
    }
    Ok(UserId::new(user))
}
