//! Frames (RFC 6455 §5): the header, the incremental decoder and the encoder.

mod decode;
mod encode;
mod header;

pub use decode::{Decoder, DecoderConfig, Event, MessageKind};
pub use encode::{
    MAX_HEADER_LEN, encode_close, encode_frame, encode_header, encode_masked_frame, shared_frame,
};
pub use header::{Header, OpCode};
