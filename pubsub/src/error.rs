//! The error codes of docs/pubsub.md#errors, shared by the command parser and the server's own checks.

/// Every `code` a pub/sub `error` envelope may carry (docs/pubsub.md#errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The text message is not one JSON object.
    BadJson,
    /// `op` is a string but not one of the known requests.
    UnknownOp,
    /// A field is missing or has the wrong type, or the topic is empty.
    BadField,
    /// A binary frame arrived on a pub/sub connection.
    BinaryFrame,
    /// The connection already holds `--max-subscriptions` subscriptions.
    TooManySubscriptions,
    /// An unsubscribe for a topic this connection is not subscribed to.
    NotSubscribed,
    /// Auth (docs/tokens.md) does not allow this topic.
    Forbidden,
    /// The topic is longer than 256 bytes.
    TopicTooLong,
    /// The connection already waits for as many cluster-wide presence answers as it may have
    /// in flight; ask again once one arrived.
    TooManyRequests,
    /// A `refresh` whose token is bad, expired, for another `sub`, or sent without
    /// `--auth-secret` (docs/tokens.md#expiry).
    Unauthorized,
}

impl ErrorCode {
    /// The code as written on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::BadJson => "bad_json",
            Self::UnknownOp => "unknown_op",
            Self::BadField => "bad_field",
            Self::BinaryFrame => "binary_frame",
            Self::TooManySubscriptions => "too_many_subscriptions",
            Self::NotSubscribed => "not_subscribed",
            Self::Forbidden => "forbidden",
            Self::TopicTooLong => "topic_too_long",
            Self::TooManyRequests => "too_many_requests",
            Self::Unauthorized => "unauthorized",
        }
    }
}
