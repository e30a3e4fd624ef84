//! Errors of the protocol core.

/// A violation of RFC 6455 by the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {}
