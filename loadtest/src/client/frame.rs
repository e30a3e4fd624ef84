//! Frames as a client writes them (always masked) and reads them (normally unmasked).

/// Continuation frame.
pub const OP_CONT: u8 = 0x0;
/// Text frame.
pub const OP_TEXT: u8 = 0x1;
/// Binary frame.
pub const OP_BINARY: u8 = 0x2;
/// Close frame.
pub const OP_CLOSE: u8 = 0x8;
/// Ping frame.
pub const OP_PING: u8 = 0x9;
/// Pong frame.
pub const OP_PONG: u8 = 0xA;

/// Appends one final, masked frame with `opcode` and `payload` to `out`.
pub fn encode_masked(out: &mut Vec<u8>, opcode: u8, payload: &[u8], mask: [u8; 4]) {
    let len = payload.len();
    out.reserve(len + 14);
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XORs `buf` with the repeating 4-byte `mask`, eight bytes at a time.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let m32 = u32::from_ne_bytes(mask) as u64;
    let m64 = m32 | (m32 << 32);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_ne_bytes(word) ^ m64;
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Why a frame from the server was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// An RSV bit is set that no extension allows (RSV1 only with `--compression`, on the first
    /// frame of a data message).
    #[error("reserved bit set")]
    Reserved,
    /// An opcode RFC 6455 does not define.
    #[error("unknown opcode {0}")]
    Opcode(u8),
    /// A control frame that is fragmented or longer than 125 bytes.
    #[error("bad control frame")]
    Control,
    /// A frame longer than the client's `max` limit.
    #[error("frame too large")]
    TooLarge,
}

/// Header of one decoded frame; the payload is `buf[header_len..header_len + payload_len]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// FIN bit.
    pub fin: bool,
    /// RSV1 bit: the message is compressed (permessage-deflate).
    pub rsv1: bool,
    /// Opcode (low four bits of the first byte).
    pub opcode: u8,
    /// Bytes of header, including a masking key if present.
    pub header_len: usize,
    /// Bytes of payload.
    pub payload_len: usize,
}

impl Frame {
    /// Header plus payload.
    pub fn total_len(&self) -> usize {
        self.header_len + self.payload_len
    }
}

/// Decodes the frame at the start of `buf`, unmasking its payload in place if the server masked
/// it. `Ok(None)`: more bytes are needed (the caller can read how many from nothing: it just
/// receives more).
pub fn decode(buf: &mut [u8], max: usize, allow_rsv1: bool) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let b0 = buf[0];
    let b1 = buf[1];
    let rsv1 = b0 & 0x40 != 0;
    let data_start = matches!(b0 & 0x0f, OP_TEXT | OP_BINARY);
    if b0 & 0x30 != 0 || (rsv1 && !(allow_rsv1 && data_start)) {
        return Err(FrameError::Reserved);
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    match opcode {
        OP_CONT | OP_TEXT | OP_BINARY => {}
        OP_CLOSE | OP_PING | OP_PONG => {
            if !fin || b1 & 0x7F > 125 {
                return Err(FrameError::Control);
            }
        }
        other => return Err(FrameError::Opcode(other)),
    }
    let masked = b1 & 0x80 != 0;
    let (len, mut header_len) = match b1 & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b), 10)
        }
        n => (n as u64, 2),
    };
    if len > max as u64 {
        return Err(FrameError::TooLarge);
    }
    let payload_len = len as usize;
    let mask_at = header_len;
    if masked {
        header_len += 4;
    }
    if buf.len() < header_len + payload_len {
        return Ok(None);
    }
    if masked {
        let mut key = [0u8; 4];
        key.copy_from_slice(&buf[mask_at..mask_at + 4]);
        apply_mask(&mut buf[header_len..header_len + payload_len], key);
    }
    Ok(Some(Frame {
        fin,
        rsv1,
        opcode,
        header_len,
        payload_len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_round_trip_all_lengths() {
        for len in [0usize, 1, 7, 8, 9, 125, 126, 65535, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            encode_masked(&mut out, OP_BINARY, &payload, [1, 2, 3, 4]);
            let f = decode(&mut out, 1 << 20, false)
                .expect("valid")
                .expect("complete");
            assert_eq!(f.total_len(), out.len());
            assert_eq!(&out[f.header_len..], &payload[..]);
            let n = out.len() - 1;
            let partial = decode(&mut out[..n], 1 << 20, false).expect("ok");
            assert!(partial.is_none());
        }
    }

    #[test]
    fn refuses_bad_frames() {
        assert_eq!(decode(&mut [0xC1, 0], 10, false), Err(FrameError::Reserved));
        assert_eq!(
            decode(&mut [0x83, 0], 10, false),
            Err(FrameError::Opcode(3))
        );
        assert_eq!(decode(&mut [0x09, 0], 10, false), Err(FrameError::Control));
        assert_eq!(
            decode(&mut [0x82, 11], 10, false),
            Err(FrameError::TooLarge)
        );
    }

    #[test]
    fn rsv1_only_with_compression_and_only_on_a_data_frame() {
        let f = decode(&mut [0xC1, 0], 10, true)
            .expect("valid")
            .expect("whole");
        assert!(f.rsv1 && f.fin && f.opcode == OP_TEXT);
        assert_eq!(decode(&mut [0xC9, 0], 10, true), Err(FrameError::Reserved));
        assert_eq!(decode(&mut [0xC0, 0], 10, true), Err(FrameError::Reserved));
        assert_eq!(decode(&mut [0xA1, 0], 10, true), Err(FrameError::Reserved));
    }
}
