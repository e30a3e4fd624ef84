//! Streaming UTF-8 validation of text messages split anywhere.

use thiserror::Error;

/// The bytes seen so far can no longer be the start of valid UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("invalid UTF-8 in text payload")]
pub struct Utf8Error;

/// Validates a text message chunk by chunk, carrying an incomplete code point across chunks.
#[derive(Debug, Default, Clone)]
pub struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets any carried bytes so the validator can start a new message.
    pub fn reset(&mut self) {
        self.partial_len = 0;
    }

    /// Feeds the next chunk; fails as soon as the bytes seen cannot be a prefix of valid UTF-8.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), Utf8Error> {
        let mut all = self.partial[..self.partial_len as usize].to_vec();
        all.extend_from_slice(chunk);
        match std::str::from_utf8(&all) {
            Ok(_) => {
                self.partial_len = 0;
                Ok(())
            }
            Err(e) if e.error_len().is_none() => {
                let rest = &all[e.valid_up_to()..];
                self.partial[..rest.len()].copy_from_slice(rest);
                self.partial_len = rest.len() as u8;
                Ok(())
            }
            Err(_) => Err(Utf8Error),
        }
    }

    /// Ends the message: fails if it stopped inside a code point. Resets the validator.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let incomplete = self.partial_len != 0;
        self.reset();
        if incomplete { Err(Utf8Error) } else { Ok(()) }
    }
}

/// Validates a complete buffer (close reasons, unfragmented text).
pub fn validate(bytes: &[u8]) -> Result<(), Utf8Error> {
    simdutf8::basic::from_utf8(bytes)
        .map(|_| ())
        .map_err(|_| Utf8Error)
}
