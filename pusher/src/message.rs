//! Client → server messages of protocol 7: one text frame, one JSON object with an `event`.
//!
//! `pusher:subscribe`/`unsubscribe`/`signin` carry `data` as an object (documented); a
//! double-encoded `data` (a string holding that object, as some clients send) is accepted too.
//! A client event's `data` may be any JSON value: it is handed on as the string that goes
//! into the outgoing `data` field (a string as is, anything else as its JSON text), which is
//! the documented form of channel events.

use simd_json::BorrowedValue;
use simd_json::prelude::*;
use thiserror::Error;

use crate::json::{self, Dom};

/// One parsed client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// `pusher:ping`: answer `pusher:pong`.
    Ping,
    /// `pusher:pong`: the answer to the server's ping.
    Pong,
    /// `pusher:subscribe`.
    Subscribe(Subscribe),
    /// `pusher:unsubscribe`.
    Unsubscribe {
        /// The channel.
        channel: String,
    },
    /// `pusher:signin`.
    Signin {
        /// `key:signature` over `socket_id::user::user_data`.
        auth: String,
        /// The raw `user_data` JSON string, as signed.
        user_data: String,
    },
    /// A `client-*` event.
    ClientEvent {
        /// The event name (starts with `client-`).
        event: String,
        /// The channel.
        channel: String,
        /// The outgoing `data` string: a string `data` as sent, any other value as its JSON
        /// text.
        data: String,
    },
    /// Another `pusher:` event (Pusher ignores unknown system events; so may the server).
    OtherSystem {
        /// The event name.
        event: String,
    },
}

/// A `pusher:subscribe`'s fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Subscribe {
    /// The channel.
    pub channel: String,
    /// `key:signature`, for private, encrypted and presence channels.
    pub auth: Option<String>,
    /// The raw `channel_data` JSON string of a presence channel, as signed.
    pub channel_data: Option<String>,
}

/// Why a message is refused. Each is answered with a `pusher:error` (no code: the protocol
/// documents none for these) and the connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// Not one JSON object.
    #[error("message is not a JSON object")]
    BadJson,
    /// No string `event`.
    #[error("message has no string event")]
    NoEvent,
    /// A field of a system event is missing or not a string.
    #[error("{event}: missing or non-string data.{field}")]
    BadField {
        /// The event.
        event: &'static str,
        /// The field.
        field: &'static str,
    },
    /// An event that is neither `pusher:` nor `client-` (clients may only send those), or a
    /// `pusher_internal:` one.
    #[error("event {0:?} may not be sent by a client")]
    NotClientEvent(String),
    /// A client event without a string `channel` or without `data`.
    #[error("client event {0:?} needs a channel and data")]
    ClientEventFields(String),
}

/// A reusable parser (one per worker); its buffers grow to the largest message seen.
#[derive(Debug, Default)]
pub struct Parser {
    dom: Dom,
    inner: Dom,
}

impl Parser {
    /// A parser with empty buffers.
    #[must_use]
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Parses one text message.
    ///
    /// # Errors
    /// A [`MessageError`] for anything but one of the messages a client may send.
    pub fn parse(&mut self, input: &[u8]) -> Result<ClientMessage, MessageError> {
        let value = self.dom.parse(input).ok_or(MessageError::BadJson)?;
        if value.as_object().is_none() {
            return Err(MessageError::BadJson);
        }
        let event = value
            .get("event")
            .and_then(|e| e.as_str())
            .ok_or(MessageError::NoEvent)?;
        let data = value.get("data");
        match event {
            "pusher:ping" => Ok(ClientMessage::Ping),
            "pusher:pong" => Ok(ClientMessage::Pong),
            "pusher:subscribe" => {
                let fields = ["channel", "auth", "channel_data"];
                let [channel, auth, channel_data] =
                    system_fields(&mut self.inner, "pusher:subscribe", data, fields)?;
                Ok(ClientMessage::Subscribe(Subscribe {
                    channel: channel.ok_or(MessageError::BadField {
                        event: "pusher:subscribe",
                        field: "channel",
                    })?,
                    auth,
                    channel_data,
                }))
            }
            "pusher:unsubscribe" => {
                let [channel] =
                    system_fields(&mut self.inner, "pusher:unsubscribe", data, ["channel"])?;
                Ok(ClientMessage::Unsubscribe {
                    channel: channel.ok_or(MessageError::BadField {
                        event: "pusher:unsubscribe",
                        field: "channel",
                    })?,
                })
            }
            "pusher:signin" => {
                let [auth, user_data] = system_fields(
                    &mut self.inner,
                    "pusher:signin",
                    data,
                    ["auth", "user_data"],
                )?;
                let missing = |field| MessageError::BadField {
                    event: "pusher:signin",
                    field,
                };
                Ok(ClientMessage::Signin {
                    auth: auth.ok_or_else(|| missing("auth"))?,
                    user_data: user_data.ok_or_else(|| missing("user_data"))?,
                })
            }
            e if e.starts_with("pusher_internal:") => {
                Err(MessageError::NotClientEvent(e.to_owned()))
            }
            e if e.starts_with("pusher:") => Ok(ClientMessage::OtherSystem {
                event: e.to_owned(),
            }),
            e if e.starts_with("client-") => {
                let channel = value.get("channel").and_then(|c| c.as_str());
                let (Some(channel), Some(data)) = (channel, data) else {
                    return Err(MessageError::ClientEventFields(e.to_owned()));
                };
                let data = match data.as_str() {
                    Some(s) => s.to_owned(),
                    None => json::text(data),
                };
                Ok(ClientMessage::ClientEvent {
                    event: e.to_owned(),
                    channel: channel.to_owned(),
                    data,
                })
            }
            e => Err(MessageError::NotClientEvent(e.to_owned())),
        }
    }
}

/// The string fields `names` of a system event's `data` object (or of the object a string
/// `data` holds); a field that is absent or `null` is `None`, one of another type an error.
fn system_fields<const N: usize>(
    inner: &mut Dom,
    event: &'static str,
    data: Option<&BorrowedValue<'_>>,
    names: [&'static str; N],
) -> Result<[Option<String>; N], MessageError> {
    let bad = |field| MessageError::BadField { event, field };
    let Some(data) = data else {
        return Err(bad("data"));
    };
    let decoded;
    let object = match data.as_str() {
        Some(text) => {
            decoded = inner.parse(text.as_bytes()).ok_or_else(|| bad("data"))?;
            &decoded
        }
        None => data,
    };
    if object.as_object().is_none() {
        return Err(bad("data"));
    }
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
    for (slot, name) in out.iter_mut().zip(names) {
        match object.get(name) {
            None => {}
            Some(v) if v.is_null() => {}
            Some(v) => *slot = Some(v.as_str().ok_or_else(|| bad(name))?.to_owned()),
        }
    }
    Ok(out)
}
