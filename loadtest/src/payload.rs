//! The header every measured message starts with: publisher id, sequence number and send time.
//!
//! Binary messages carry it as 20 little-endian bytes (`u32` id, `u64` seq, `u64` ns). Text
//! messages carry the same fields as 40 lowercase hex digits so the payload stays valid UTF-8.
//! The rest of the payload is filler (`.`), up to `--size` bytes.

/// Bytes of the binary header.
pub const BINARY_HEADER: usize = 20;
/// Bytes of the text header.
pub const TEXT_HEADER: usize = 40;

/// What a message says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Global id of the sending connection (publisher).
    pub publisher: u32,
    /// Per-publisher sequence number, from 0.
    pub seq: u64,
    /// Send time, nanoseconds since the loadtest's monotonic base.
    pub sent_ns: u64,
}

/// Smallest payload that holds a header in the given mode.
pub fn min_size(binary: bool) -> usize {
    if binary { BINARY_HEADER } else { TEXT_HEADER }
}

/// Overwrites the header at the start of `buf` (which is at least [`min_size`] long and whose
/// tail is already filled).
pub fn write(buf: &mut [u8], binary: bool, h: Header) {
    if binary {
        buf[0..4].copy_from_slice(&h.publisher.to_le_bytes());
        buf[4..12].copy_from_slice(&h.seq.to_le_bytes());
        buf[12..20].copy_from_slice(&h.sent_ns.to_le_bytes());
    } else {
        hex(&mut buf[0..8], h.publisher as u64);
        hex(&mut buf[8..24], h.seq);
        hex(&mut buf[24..40], h.sent_ns);
    }
}

/// What fills a payload after its header (`--filler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Filler {
    /// `.` repeated: compresses to almost nothing.
    Dots,
    /// Chat-like JSON (`{"user":…,"text":"…"}` objects of common words): compresses like chat.
    Chat,
}

/// The filler every scenario uses (set once from `--filler` before any thread starts).
pub static FILLER: std::sync::OnceLock<Filler> = std::sync::OnceLock::new();

/// A payload of `size` bytes with filler after where the header goes.
pub fn template(size: usize) -> Vec<u8> {
    match FILLER.get() {
        Some(Filler::Chat) => chat(size),
        _ => vec![b'.'; size],
    }
}

/// `size` bytes of chat-like JSON text (deterministic), valid UTF-8.
fn chat(size: usize) -> Vec<u8> {
    const USERS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
    const WORDS: [&str; 20] = [
        "hey", "anyone", "seen", "the", "new", "build", "works", "for", "me", "lunch", "at",
        "noon", "deploy", "is", "green", "thanks", "ok", "ship", "it", "tomorrow",
    ];
    let mut rng = crate::rng::Rng::new(0x2545_f491_4f6c_dd1d);
    let mut out = String::with_capacity(size + 64);
    let mut id = 180_000_000u64;
    while out.len() < size {
        let user = USERS[(rng.next_u64() % (USERS.len()) as u64) as usize];
        let n = 3 + (rng.next_u64() % (9));
        let text: Vec<&str> = (0..n)
            .map(|_| WORDS[(rng.next_u64() % (WORDS.len()) as u64) as usize])
            .collect();
        id += 1 + (rng.next_u64() % (5));
        out.push_str(&format!(
            r#"{{"id":{id},"user":"{user}","text":"{}"}},"#,
            text.join(" ")
        ));
    }
    let mut bytes = out.into_bytes();
    bytes.truncate(size);
    bytes
}

/// Reads the header of a received message; `None` if it is not one of ours.
pub fn read(buf: &[u8], binary: bool) -> Option<Header> {
    if binary {
        if buf.len() < BINARY_HEADER {
            return None;
        }
        let mut u4 = [0u8; 4];
        let mut u8a = [0u8; 8];
        let mut u8b = [0u8; 8];
        u4.copy_from_slice(&buf[0..4]);
        u8a.copy_from_slice(&buf[4..12]);
        u8b.copy_from_slice(&buf[12..20]);
        Some(Header {
            publisher: u32::from_le_bytes(u4),
            seq: u64::from_le_bytes(u8a),
            sent_ns: u64::from_le_bytes(u8b),
        })
    } else {
        if buf.len() < TEXT_HEADER {
            return None;
        }
        Some(Header {
            publisher: u32::try_from(unhex(&buf[0..8])?).ok()?,
            seq: unhex(&buf[8..24])?,
            sent_ns: unhex(&buf[24..40])?,
        })
    }
}

fn hex(out: &mut [u8], mut v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in out.iter_mut().rev() {
        *b = DIGITS[(v & 0xF) as usize];
        v >>= 4;
    }
}

fn unhex(s: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        v = (v << 4) | d as u64;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_both_modes() {
        let h = Header {
            publisher: 0xDEAD_BEEF,
            seq: u64::MAX - 3,
            sent_ns: 123_456_789,
        };
        for binary in [false, true] {
            let mut buf = template(64);
            write(&mut buf, binary, h);
            assert_eq!(read(&buf, binary), Some(h));
            if !binary {
                assert!(std::str::from_utf8(&buf).is_ok());
            }
        }
        assert_eq!(read(b"short", true), None);
        assert_eq!(read(&[b'z'; 40], false), None);
    }
}
