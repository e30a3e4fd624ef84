//! Negotiating permessage-deflate (RFC 7692 §5 and §7.1) from a client's
//! `Sec-WebSocket-Extensions` offers.
//!
//! What ringcast answers, whatever the client asked:
//!
//! - `server_no_context_takeover`: every message we send is compressed on its own, so one
//!   compressed form of a message is valid for every receiver and no connection keeps a
//!   compressor (RFC 7692 §7.1.1.1 lets a server say so even when the client did not ask).
//! - `client_no_context_takeover`: the client resets its compressor after each message, so one
//!   inflater per worker, reset per message, reads every connection (§7.1.1.2 lets a server ask
//!   for it in any answer, and a client must comply).
//! - `server_max_window_bits=N` when the client asked for a window (then N is at most what it
//!   asked) or when our own window is smaller than 32 KiB. A client asking for 8 bits (256 bytes)
//!   is declined: zlib cannot compress with a 256-byte window (it silently uses 512).
//! - never `client_max_window_bits`: absent from an answer it means the client may use up to
//!   32 KiB, which the worker's inflater (window bits 15) reads whatever the client chose.
//!
//! A client may send several offers, in its order of preference; we answer the first one that is
//! valid and that we can honour. An offer that breaks §7.1 (unknown parameter, a parameter twice,
//! a bad value) is declined, and so is one we cannot honour; when no offer is left, the
//! connection is opened without the extension; the handshake never fails for it.

use std::fmt;

/// The extension token (RFC 7692 §7).
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// Smallest LZ77 window (base-2 log) zlib compresses with: 8 is in RFC 7692's range but zlib
/// uses a 512-byte window for it, which a client that asked for 256 bytes could not read.
pub const MIN_WINDOW_BITS: u8 = 9;
/// Largest LZ77 window (base-2 log) RFC 7692 allows: 32 KiB.
pub const MAX_WINDOW_BITS: u8 = 15;

/// What the server is willing to negotiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Largest LZ77 window (base-2 log, 9..=15) our compressor uses; a client may ask for less.
    /// Smaller windows compress worse, but any value is answered the same way, so 15 is the
    /// default (`server_max_window_bits` is then named only when a client asks for it).
    pub max_window_bits: u8,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            max_window_bits: MAX_WINDOW_BITS,
        }
    }
}

/// A `permessage-deflate` offer that is valid under RFC 7692 §7.1 (which says nothing yet about
/// whether we can honour it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Offer {
    /// `server_no_context_takeover` was offered.
    pub server_no_context_takeover: bool,
    /// `client_no_context_takeover` was offered.
    pub client_no_context_takeover: bool,
    /// `server_max_window_bits=N` (8..=15) was offered.
    pub server_max_window_bits: Option<u8>,
    /// `client_max_window_bits` was offered: `Some(None)` without a value, `Some(Some(N))` with
    /// one (8..=15).
    pub client_max_window_bits: Option<Option<u8>>,
}

/// Why an offer is declined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decline {
    /// The element does not parse as `token *( ";" token [ "=" (token | quoted-string) ] )`.
    Syntax,
    /// A parameter RFC 7692 does not define for an offer.
    UnknownParameter(String),
    /// A parameter named twice (§7.1: the offer must be declined).
    Duplicate(&'static str),
    /// A value that is not allowed: a value on a parameter that takes none, window bits missing,
    /// out of 8..=15 or with leading zeros.
    InvalidValue(&'static str),
    /// Valid, but we cannot honour it: `server_max_window_bits=8` (see [`MIN_WINDOW_BITS`]).
    Unsupported(&'static str),
}

impl fmt::Display for Decline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decline::Syntax => f.write_str("malformed extension offer"),
            Decline::UnknownParameter(p) => write!(f, "unknown parameter {p}"),
            Decline::Duplicate(p) => write!(f, "parameter {p} named twice"),
            Decline::InvalidValue(p) => write!(f, "invalid value for {p}"),
            Decline::Unsupported(p) => write!(f, "cannot honour {p}"),
        }
    }
}

/// The outcome of a successful negotiation: the connection sends and receives compressed
/// messages (RSV1 is legal on the first frame of its data messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// LZ77 window (base-2 log, 9..=15) our compressor may use towards this connection: the
    /// compressed form of a message made with N bits serves every receiver that negotiated N or
    /// more, so this is the key of the shared compressed form.
    pub server_max_window_bits: u8,
    /// Whether the answer names `server_max_window_bits`.
    announce_window: bool,
}

impl Negotiated {
    /// The `Sec-WebSocket-Extensions` value of the 101 answer (without the header name).
    pub fn response(&self) -> &'static str {
        const BASE: &str =
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
        if !self.announce_window {
            return BASE;
        }
        match self.server_max_window_bits {
            9 => {
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9"
            }
            10 => {
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"
            }
            11 => {
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11"
            }
            12 => {
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12"
            }
            13 => {
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=13"
            }
            14 => {
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=14"
            }
            _ => {
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15"
            }
        }
    }

    /// `base` with RSV1 allowed, for the connection's [`crate::frame::Decoder`].
    pub fn decoder_config(&self, base: crate::DecoderConfig) -> crate::DecoderConfig {
        crate::DecoderConfig {
            allow_rsv1: true,
            ..base
        }
    }
}

/// Chooses our answer to the `Sec-WebSocket-Extensions` header values of a request (every value,
/// in order): the first `permessage-deflate` offer that is valid and that we can honour, or
/// `None` (open the connection without the extension). Other extensions are ignored.
pub fn negotiate<S: AsRef<str>>(header_values: &[S], config: &DeflateConfig) -> Option<Negotiated> {
    offers(header_values).find_map(|offer| offer.and_then(|o| accept(&o, config)).ok())
}

/// Every `permessage-deflate` element of the header values, in order, parsed and checked
/// against RFC 7692 §7.1 (elements naming other extensions are skipped).
pub fn offers<S: AsRef<str>>(
    header_values: &[S],
) -> impl Iterator<Item = Result<Offer, Decline>> + '_ {
    header_values
        .iter()
        .flat_map(|v| split_unquoted(v.as_ref(), b','))
        .filter(|element| !element.trim().is_empty())
        .filter_map(|element| {
            let mut parts = split_unquoted(element, b';');
            let name = parts.next().unwrap_or("").trim();
            if !is_token(name) {
                // Not even a name: it may be ours, so it counts as a declined offer.
                return Some(Err(Decline::Syntax));
            }
            if !name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
                return None;
            }
            Some(parse_params(parts))
        })
}

/// Decides whether we can honour a valid offer, and how.
pub fn accept(offer: &Offer, config: &DeflateConfig) -> Result<Negotiated, Decline> {
    let ours = config
        .max_window_bits
        .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS);
    match offer.server_max_window_bits {
        Some(bits) if bits < MIN_WINDOW_BITS => {
            Err(Decline::Unsupported("server_max_window_bits=8"))
        }
        // §7.1.2.1: accepting the parameter means answering it, with the same or a smaller value.
        Some(bits) => Ok(Negotiated {
            server_max_window_bits: bits.min(ours),
            announce_window: true,
        }),
        // §7.1.2.1: a server may name the parameter even when the client did not.
        None => Ok(Negotiated {
            server_max_window_bits: ours,
            announce_window: ours < MAX_WINDOW_BITS,
        }),
    }
}

fn parse_params<'a>(params: impl Iterator<Item = &'a str>) -> Result<Offer, Decline> {
    let mut offer = Offer::default();
    let mut seen = [false; 4];
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim()).ok_or(Decline::Syntax)?)),
            None => (param.trim(), None),
        };
        if !is_token(name) {
            return Err(Decline::Syntax);
        }
        let (index, canonical) = match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" => (0, "server_no_context_takeover"),
            "client_no_context_takeover" => (1, "client_no_context_takeover"),
            "server_max_window_bits" => (2, "server_max_window_bits"),
            "client_max_window_bits" => (3, "client_max_window_bits"),
            _ => return Err(Decline::UnknownParameter(name.to_string())),
        };
        if std::mem::replace(&mut seen[index], true) {
            return Err(Decline::Duplicate(canonical));
        }
        match index {
            0 | 1 if value.is_some() => return Err(Decline::InvalidValue(canonical)),
            0 => offer.server_no_context_takeover = true,
            1 => offer.client_no_context_takeover = true,
            2 => {
                let bits = value.as_deref().and_then(window_bits);
                offer.server_max_window_bits = Some(bits.ok_or(Decline::InvalidValue(canonical))?);
            }
            _ => {
                offer.client_max_window_bits = Some(match value {
                    None => None,
                    Some(v) => Some(window_bits(&v).ok_or(Decline::InvalidValue(canonical))?),
                });
            }
        }
    }
    Ok(offer)
}

/// A window-bits value: a decimal integer without leading zeros in 8..=15 (RFC 7692 §7.1.2).
fn window_bits(v: &str) -> Option<u8> {
    if v.starts_with('0') || v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u8 = v.parse().ok()?;
    (8..=MAX_WINDOW_BITS).contains(&n).then_some(n)
}

/// A parameter value: a token, or a quoted-string whose unescaped content must be a token
/// (RFC 6455 §9.1). `None` when it is neither.
fn unquote(v: &str) -> Option<String> {
    let inner = match v.strip_prefix('"') {
        None => v.to_string(),
        Some(rest) => {
            let body = rest.strip_suffix('"')?;
            let mut out = String::with_capacity(body.len());
            let mut chars = body.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.push(chars.next()?),
                    '"' => return None,
                    c => out.push(c),
                }
            }
            out
        }
    };
    is_token(&inner).then_some(inner)
}

/// Splits at `sep` outside quoted-strings (a backslash escapes the next character inside one).
fn split_unquoted(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    let mut i = 0;
    std::iter::from_fn(move || {
        if start > bytes.len() {
            return None;
        }
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            if escaped {
                escaped = false;
            } else if quoted && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if b == sep && !quoted {
                let part = &s[start..i - 1];
                start = i;
                return Some(part);
            }
        }
        let part = &s[start..];
        start = bytes.len() + 1;
        Some(part)
    })
}

fn is_token(s: &str) -> bool {
    crate::handshake::is_token(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_quotes() {
        let parts: Vec<_> = split_unquoted(r#"a; b="x;y"; c="\";"; d"#, b';').collect();
        assert_eq!(parts, vec!["a", r#" b="x;y""#, r#" c="\";""#, " d"]);
        assert_eq!(split_unquoted("", b',').collect::<Vec<_>>(), vec![""]);
        assert_eq!(
            split_unquoted("a,", b',').collect::<Vec<_>>(),
            vec!["a", ""]
        );
    }

    #[test]
    fn window_bits_values() {
        for ok in 8..=15u8 {
            assert_eq!(window_bits(&ok.to_string()), Some(ok));
        }
        for bad in ["", "7", "16", "08", "010", "1a", "+9", " 9", "99999999999"] {
            assert_eq!(window_bits(bad), None, "{bad:?}");
        }
    }
}
