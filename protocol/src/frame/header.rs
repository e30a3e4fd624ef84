//! Frame header parsing with the per-header checks of RFC 6455 §5.2.

use crate::error::ProtocolError;

/// A frame opcode (RFC 6455 §5.2, §11.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {
    /// 0x0: continues a fragmented message.
    Continuation,
    /// 0x1: starts a text message.
    Text,
    /// 0x2: starts a binary message.
    Binary,
    /// 0x8: Close.
    Close,
    /// 0x9: Ping.
    Ping,
    /// 0xA: Pong.
    Pong,
}

impl OpCode {
    /// Decodes the 4-bit opcode; reserved values are a protocol error.
    pub fn from_u8(v: u8) -> Result<Self, ProtocolError> {
        Ok(match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            other => return Err(ProtocolError::UnknownOpcode(other)),
        })
    }

    /// The 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// Close, Ping and Pong.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// FIN bit: last frame of a message.
    pub fin: bool,
    /// RSV1 bit (per-message compressed when permessage-deflate is negotiated).
    pub rsv1: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, when the MASK bit is set.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub len: u64,
}

impl Header {
    /// Total header length announced by the first two bytes.
    pub fn wire_len(b0_b1: [u8; 2]) -> usize {
        let ext = match b0_b1[1] & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        2 + ext + if b0_b1[1] & 0x80 != 0 { 4 } else { 0 }
    }

    /// Checks what the first byte alone can prove wrong: the opcode, the reserved bits (RSV1
    /// only on the first frame of a text or binary message, and only when an extension allows
    /// it; RSV2/RSV3 never) and FIN on control frames.
    pub fn check_first(b0: u8, allow_rsv1: bool) -> Result<OpCode, ProtocolError> {
        let opcode = OpCode::from_u8(b0 & 0x0f)?;
        let rsv = b0 & 0x70;
        let rsv1_ok = allow_rsv1 && rsv == 0x40 && matches!(opcode, OpCode::Text | OpCode::Binary);
        if rsv != 0 && !rsv1_ok {
            return Err(ProtocolError::ReservedBits);
        }
        if opcode.is_control() && b0 & 0x80 == 0 {
            return Err(ProtocolError::FragmentedControl);
        }
        Ok(opcode)
    }

    /// Checks what the first two bytes can prove wrong, so a bad frame fails before its
    /// extended length or mask arrive.
    pub fn check_prefix(b0: u8, b1: u8, allow_rsv1: bool) -> Result<OpCode, ProtocolError> {
        let opcode = Self::check_first(b0, allow_rsv1)?;
        if opcode.is_control() && b1 & 0x7f > 125 {
            return Err(ProtocolError::ControlTooLong(u64::from(b1 & 0x7f)));
        }
        Ok(opcode)
    }

    /// Parses a complete header from `buf`; `Ok(None)` when more bytes are needed.
    /// Returns the header and its length on the wire.
    pub fn parse(buf: &[u8], allow_rsv1: bool) -> Result<Option<(Header, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let opcode = Self::check_prefix(b0, b1, allow_rsv1)?;
        Self::parse_fields(buf, opcode)
    }

    /// Decodes length and mask of a header whose first two bytes were already checked.
    pub(crate) fn parse_fields(
        buf: &[u8],
        opcode: OpCode,
    ) -> Result<Option<(Header, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let need = Self::wire_len([b0, b1]);
        if buf.len() < need {
            return Ok(None);
        }
        let (len, mut at) = match b1 & 0x7f {
            126 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
            127 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                let len = u64::from_be_bytes(b);
                if len >> 63 != 0 {
                    return Err(ProtocolError::LengthTopBit);
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = if b1 & 0x80 != 0 {
            let k = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
            at += 4;
            Some(k)
        } else {
            None
        };
        Ok(Some((
            Header {
                fin: b0 & 0x80 != 0,
                rsv1: b0 & 0x40 != 0,
                opcode,
                mask,
                len,
            },
            at,
        )))
    }
}
