//! Errors of the protocol core. Each maps to one close code: `CloseCode::from(&error)`
//! (the mapping lives with the close codes, in `close`).

/// A violation of RFC 6455 (or of a configured limit) by the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A client frame arrived without the MASK bit (RFC 6455 §5.1).
    #[error("client frame is not masked")]
    Unmasked,
    /// RSV1/2/3 set without an extension that defines them.
    #[error("reserved bits set without a negotiated extension")]
    ReservedBits,
    /// Opcode 3–7 or 11–15.
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A control frame with FIN=0.
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame with a payload over 125 bytes.
    #[error("control frame payload of {0} bytes exceeds 125")]
    ControlTooLong(u64),
    /// A continuation frame with no message open.
    #[error("continuation frame without a started message")]
    UnexpectedContinuation,
    /// A text or binary frame while a fragmented message is still open.
    #[error("new data frame while a fragmented message is open")]
    ExpectedContinuation,
    /// A 64-bit payload length with the most significant bit set.
    #[error("64-bit payload length has its top bit set")]
    LengthTopBit,
    /// A Close frame with a 1-byte payload.
    #[error("close frame payload of 1 byte")]
    CloseTooShort,
    /// A Close frame with a code that may not be sent on the wire.
    #[error("invalid close code {0}")]
    InvalidCloseCode(u16),
    /// A Close frame reason that is not UTF-8.
    #[error("close reason is not valid UTF-8")]
    InvalidCloseReason,
    /// A text message that is not UTF-8 (detected as early as possible).
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// A compressed message that does not inflate: not raw deflate, or referring to an earlier
    /// message although `client_no_context_takeover` was negotiated (RFC 7692 §7.2.2).
    #[error("compressed message does not inflate")]
    InvalidDeflate,
    /// A message larger than the configured limit, detected from a frame header (or, for a
    /// compressed message, while inflating it).
    #[error("message of at least {size} bytes exceeds the limit of {limit}")]
    MessageTooBig {
        /// Bytes the message would hold with this frame.
        size: u64,
        /// The configured maximum.
        limit: u64,
    },
}
