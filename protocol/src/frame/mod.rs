//! Frames (RFC 6455 §5): the header, frame reading, message assembly, the decoder joining them,
//! and the encoder.

mod assemble;
mod decode;
mod encode;
mod header;
mod read;

pub use assemble::MessageKind;
pub use decode::{Decoder, DecoderConfig, Event};
pub use encode::{
    MAX_HEADER_LEN, encode_close, encode_compressed_frame, encode_frame, encode_header,
    encode_masked_frame, shared_frame, shared_frame_rsv1,
};
pub use header::{Header, OpCode};
