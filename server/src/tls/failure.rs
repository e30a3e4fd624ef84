//! [`Failure`]: why a TLS connection failed, as a metric label.

/// Why a TLS connection failed: the `reason` label of `ringcast_tls_handshake_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The first bytes were a plain HTTP request: answered in plain text with 400, closed.
    PlainHttp,
    /// Not TLS, or a malformed / oversized record.
    BadRecord,
    /// The client offered no protocol version or cipher suite we serve.
    ProtocolVersion,
    /// The client offered ALPN protocols, none of them `http/1.1`.
    Alpn,
    /// The client sent a fatal alert.
    AlertReceived,
    /// A server name (SNI) that is no host name (RFC 6066: an invalid name, two names):
    /// `illegal_parameter` or `decode_error`. A valid name we hold no certificate for is
    /// served our one certificate, as RFC 6066 allows (the client's check refuses it).
    ServerName,
    /// A client certificate we did not ask for (we never request one): `unexpected_message`.
    ClientCertificate,
    /// Another message out of order or against the protocol.
    PeerMisbehaved,
    /// A record failed to decrypt.
    Decrypt,
    /// The handshake did not finish within `--handshake-timeout` of the accept.
    Timeout,
    /// The client closed or reset the connection mid-handshake.
    Eof,
    /// Anything else rustls refused.
    Other,
}

impl Failure {
    /// The metric label (one of `metrics::TLS_FAILURE_REASONS`).
    pub fn label(self) -> &'static str {
        match self {
            Failure::PlainHttp => "plain_http",
            Failure::BadRecord => "bad_record",
            Failure::ProtocolVersion => "protocol_version",
            Failure::Alpn => "alpn",
            Failure::AlertReceived => "alert_received",
            Failure::ServerName => "server_name",
            Failure::ClientCertificate => "client_certificate",
            Failure::PeerMisbehaved => "peer_misbehaved",
            Failure::Decrypt => "decrypt",
            Failure::Timeout => "timeout",
            Failure::Eof => "eof",
            Failure::Other => "other",
        }
    }

    pub(super) fn of(error: &rustls::Error) -> Failure {
        use rustls::{Error as E, HandshakeType, InvalidMessage, PeerMisbehaved};
        match error {
            E::InvalidMessage(InvalidMessage::InvalidServerName)
            | E::PeerMisbehaved(
                PeerMisbehaved::ServerNameMustContainOneHostName
                | PeerMisbehaved::ServerNameDifferedOnRetry,
            ) => Failure::ServerName,
            E::InappropriateHandshakeMessage {
                got_type: HandshakeType::Certificate,
                ..
            } => Failure::ClientCertificate,
            E::InvalidMessage(_) | E::PeerSentOversizedRecord => Failure::BadRecord,
            E::PeerIncompatible(_) => Failure::ProtocolVersion,
            E::NoApplicationProtocol => Failure::Alpn,
            E::AlertReceived(_) => Failure::AlertReceived,
            E::PeerMisbehaved(_)
            | E::InappropriateMessage { .. }
            | E::InappropriateHandshakeMessage { .. } => Failure::PeerMisbehaved,
            E::DecryptError => Failure::Decrypt,
            _ => Failure::Other,
        }
    }
}
