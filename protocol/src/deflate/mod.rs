//! permessage-deflate (RFC 7692): negotiation, inflating received messages with bounded memory,
//! and compressing each sent message once for every receiver.
//!
//! How a server uses it:
//!
//! 1. In the upgrade, [`negotiate`] the client's `Sec-WebSocket-Extensions` values (or
//!    [`crate::handshake::Upgrade::negotiate_deflate`]); on `Some(n)`, answer `n.response()`
//!    (see [`crate::handshake::render_accept_with_extensions`]) and build the connection's
//!    decoder from `n.decoder_config(..)`, which allows RSV1.
//! 2. A decoded [`crate::Event::Message`] with `compressed: true` goes through the worker's
//!    [`Inflater`], capped by the message limit.
//! 3. A message sent to many receivers is compressed once per window size by the worker's
//!    [`Deflater`] ([`Deflater::compressed_frame`]) and that frame is shared by every receiver
//!    that negotiated the extension with at least that window; the others get the plain frame.

mod compress;
mod inflate;
mod negotiate;

pub use compress::{CompressConfig, Compressor, Deflater};
pub use inflate::{Inflater, TAIL};
pub use negotiate::{
    Decline, DeflateConfig, MAX_WINDOW_BITS, MIN_WINDOW_BITS, Negotiated, Offer,
    PERMESSAGE_DEFLATE, accept, negotiate, offers,
};
