//! The error codes of Pusher's "Channels Protocol" page (section "Error Codes"), used as
//! WebSocket close codes and as the `code` of `pusher:error`.

/// What a client should do after a close with a given code (the documented ranges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// 4000–4099: reconnecting with the same parameters will not succeed.
    Never,
    /// 4100–4199: reconnect after backing off at least one second.
    Backoff,
    /// 4200–4299: reconnect immediately.
    Immediately,
    /// 4300–4399: not a close; an error on a connection that stays open.
    NotClosed,
}

/// Every documented code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 4000: the application only accepts TLS connections.
    SslOnly,
    /// 4001: no app has this key.
    AppNotFound,
    /// 4003: the app is disabled.
    AppDisabled,
    /// 4004: the app is over its connection quota.
    OverConnectionQuota,
    /// 4005: the path is not `/app/{key}`.
    PathNotFound,
    /// 4006: the `version` query parameter is not a version string.
    InvalidVersion,
    /// 4007: the `protocol` query parameter names a protocol this server does not speak.
    UnsupportedProtocol,
    /// 4008: no `protocol` query parameter.
    NoProtocol,
    /// 4009: the connection is unauthorized.
    Unauthorized,
    /// 4100: the server is over capacity.
    OverCapacity,
    /// 4200: generic "reconnect immediately" (a server shutting down).
    ReconnectImmediately,
    /// 4201: a ping was sent and no pong came back.
    PongNotReceived,
    /// 4202: closed after inactivity.
    ClosedAfterInactivity,
    /// 4301: a client event was rejected by the rate limit (the connection stays open).
    ClientEventRateLimit,
    /// 4302: a signin's watchlist was longer than the limit; only its head was kept.
    WatchlistLimit,
}

impl ErrorCode {
    /// The numeric code (a close code, and `pusher:error`'s `data.code`).
    #[must_use]
    pub const fn code(self) -> u16 {
        match self {
            Self::SslOnly => 4000,
            Self::AppNotFound => 4001,
            Self::AppDisabled => 4003,
            Self::OverConnectionQuota => 4004,
            Self::PathNotFound => 4005,
            Self::InvalidVersion => 4006,
            Self::UnsupportedProtocol => 4007,
            Self::NoProtocol => 4008,
            Self::Unauthorized => 4009,
            Self::OverCapacity => 4100,
            Self::ReconnectImmediately => 4200,
            Self::PongNotReceived => 4201,
            Self::ClosedAfterInactivity => 4202,
            Self::ClientEventRateLimit => 4301,
            Self::WatchlistLimit => 4302,
        }
    }

    /// The documented description, used as the close reason and the error message (each is
    /// shorter than the 123 bytes a close reason may hold).
    #[must_use]
    pub const fn message(self) -> &'static str {
        match self {
            Self::SslOnly => "Application only accepts SSL connections, reconnect using wss://",
            Self::AppNotFound => "Application does not exist",
            Self::AppDisabled => "Application disabled",
            Self::OverConnectionQuota => "Application is over connection quota",
            Self::PathNotFound => "Path not found",
            Self::InvalidVersion => "Invalid version string format",
            Self::UnsupportedProtocol => "Unsupported protocol version",
            Self::NoProtocol => "No protocol version supplied",
            Self::Unauthorized => "Connection is unauthorized",
            Self::OverCapacity => "Over capacity",
            Self::ReconnectImmediately => "Generic reconnect immediately",
            Self::PongNotReceived => "Pong reply not received",
            Self::ClosedAfterInactivity => "Closed after inactivity",
            Self::ClientEventRateLimit => "Client event rejected due to rate limit",
            Self::WatchlistLimit => {
                "Watchlist limit exceeded. Only the first 100 user IDs are accepted."
            }
        }
    }

    /// The documented range this code is in.
    #[must_use]
    pub const fn reconnect(self) -> Reconnect {
        match self.code() {
            4000..=4099 => Reconnect::Never,
            4100..=4199 => Reconnect::Backoff,
            4200..=4299 => Reconnect::Immediately,
            _ => Reconnect::NotClosed,
        }
    }

    /// Whether the server closes the connection with this code (every range but 4300–4399).
    #[must_use]
    pub const fn closes(self) -> bool {
        !matches!(self.reconnect(), Reconnect::NotClosed)
    }
}
