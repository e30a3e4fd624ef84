//! Frame decoding and encoding.

/// Frame opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpCode {}
/// Decoder configuration.
pub struct DecoderConfig;
/// Frame decoder.
pub struct Decoder;
/// Decoder event.
pub enum Event {}
