//! Close codes and Close frame payloads (RFC 6455 §5.5.1, §7.4).

use crate::error::ProtocolError;
use crate::utf8;

/// A WebSocket close status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the server is going away (shutdown, drain).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the framing rules.
    pub const PROTOCOL: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED: CloseCode = CloseCode(1003);
    /// 1007: a text message or close reason that is not UTF-8.
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a policy violation (here: backpressure limit, idle timeout).
    pub const POLICY: CloseCode = CloseCode(1008);
    /// 1009: a message over the configured size limit.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL: CloseCode = CloseCode(1011);

    /// Whether a peer may send this code in a Close frame. 1005, 1006 and 1015 are reserved
    /// for reporting and must never appear on the wire; 0–999 and 1016–2999 are unassigned.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<&ProtocolError> for CloseCode {
    /// The close code sent before closing the connection for this error (docs/limits.md#close-codes). Every
    /// variant is listed, so a new error cannot fall into 1002 by default.
    fn from(e: &ProtocolError) -> Self {
        match e {
            ProtocolError::Unmasked
            | ProtocolError::ReservedBits
            | ProtocolError::UnknownOpcode(_)
            | ProtocolError::FragmentedControl
            | ProtocolError::ControlTooLong(_)
            | ProtocolError::UnexpectedContinuation
            | ProtocolError::ExpectedContinuation
            | ProtocolError::LengthTopBit
            | ProtocolError::CloseTooShort
            | ProtocolError::InvalidCloseCode(_) => CloseCode::PROTOCOL,
            ProtocolError::InvalidUtf8
            | ProtocolError::InvalidCloseReason
            | ProtocolError::InvalidDeflate => CloseCode::INVALID_PAYLOAD,
            ProtocolError::MessageTooBig { .. } => CloseCode::TOO_BIG,
        }
    }
}

/// A validated Close frame payload: no payload, or a code with an optional UTF-8 reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code, `None` when the payload was empty.
    pub code: Option<CloseCode>,
    /// The reason, empty when absent.
    pub reason: &'a str,
}

impl<'a> CloseFrame<'a> {
    /// Validates a received Close payload: 1 byte and reserved codes are 1002, a reason that is
    /// not UTF-8 is 1007.
    pub fn parse(payload: &'a [u8]) -> Result<Self, ProtocolError> {
        match payload.len() {
            0 => Ok(CloseFrame {
                code: None,
                reason: "",
            }),
            1 => Err(ProtocolError::CloseTooShort),
            _ => {
                let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
                if !code.is_sendable() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                let reason = &payload[2..];
                utf8::validate(reason).map_err(|_| ProtocolError::InvalidCloseReason)?;
                // SAFETY: `reason` was validated as UTF-8 on the line above.
                let reason = unsafe { std::str::from_utf8_unchecked(reason) };
                Ok(CloseFrame {
                    code: Some(code),
                    reason,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_codes_are_rejected() {
        for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            let p = code.to_be_bytes();
            assert_eq!(
                CloseFrame::parse(&p),
                Err(ProtocolError::InvalidCloseCode(code))
            );
        }
        for code in [1000u16, 1001, 1003, 1007, 1011, 1014, 3000, 4999] {
            assert!(CloseFrame::parse(&code.to_be_bytes()).is_ok(), "{code}");
        }
    }

    #[test]
    fn one_byte_and_bad_reason() {
        assert_eq!(CloseFrame::parse(&[3]), Err(ProtocolError::CloseTooShort));
        assert_eq!(
            CloseFrame::parse(&[3, 232, 0xff]),
            Err(ProtocolError::InvalidCloseReason)
        );
        let ok = CloseFrame::parse(&[3, 232, b'b', b'y', b'e']).unwrap();
        assert_eq!(ok.code, Some(CloseCode::NORMAL));
        assert_eq!(ok.reason, "bye");
    }
}
