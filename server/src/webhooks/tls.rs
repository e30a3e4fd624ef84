//! TLS for `https://` webhook URLs (docs/pusher-webhooks.md#https): one rustls client
//! configuration for every URL, trusting the system's CA certificates (rustls-native-certs:
//! Debian's /etc/ssl/certs, or `SSL_CERT_FILE` / `SSL_CERT_DIR`) plus an optional private CA
//! (`--pusher-webhook-ca`); each POST's connection wrapped in it, with SNI and the name check
//! against the URL's host.
//!
//! The system store rather than a compiled-in Mozilla list (webpki-roots): a CA an operator
//! adds with `update-ca-certificates` is trusted, and the roots follow the OS's security
//! updates instead of the binary's build date.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::failure::{PostError, stream_error};

/// Why the webhooks' TLS client cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// `--pusher-webhook-ca` cannot be read or holds no usable PEM certificate.
    #[error("--pusher-webhook-ca {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// rustls refused the configuration (no protocol version in common with `ring`).
    #[error("webhook TLS client: {0}")]
    Config(rustls::Error),
}

/// The certificates of a private CA file, checked as rustls will use them.
///
/// # Errors
/// [`CaError::File`]: unreadable, not PEM, no certificate, or none rustls can parse.
pub fn check_ca(path: &Path) -> Result<(), CaError> {
    let mut roots = RootCertStore::empty();
    add_ca_file(&mut roots, path)
}

fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> Result<(), CaError> {
    let file_error = |message: String| CaError::File {
        path: path.to_path_buf(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|items| items.collect())
        .map_err(|e| match e {
            rustls::pki_types::pem::Error::Io(e) => file_error(e.to_string()),
            e => file_error(e.to_string()),
        })?;
    if certs.is_empty() {
        return Err(file_error("no CERTIFICATE in it".into()));
    }
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(file_error("no certificate rustls can use".into()));
    }
    Ok(())
}

/// The client configuration of every `https://` webhook URL: the system's roots, then
/// `ca_file`'s. TLS 1.3 and 1.2, ALPN `http/1.1`, rustls' in-memory session cache (shared by
/// all URLs, so a POST after the first resumes its session: an abbreviated handshake).
///
/// # Errors
/// [`CaError`]: a bad `ca_file`. No system root at all is only logged: a private CA may be
/// all that is needed.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, CaError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(e) = native.errors.first() {
        tracing::warn!(
            errors = native.errors.len(),
            "webhooks: reading the system's CA certificates: {e}"
        );
    }
    if let Some(path) = ca_file {
        add_ca_file(&mut roots, path)?;
    }
    if added == 0 && ca_file.is_none() {
        tracing::warn!(
            "webhooks: no system CA certificate found (Debian: install ca-certificates); \
             https:// webhooks will fail unless --pusher-webhook-ca names their CA"
        );
    }
    tracing::debug!(
        system_roots = added,
        ignored,
        "webhook TLS client trusts {} roots",
        roots.len()
    );
    // `ring`, as the server's TLS: rustls deprecates it only for lacking post-quantum key
    // exchange. Its default list puts secp384r1 first, which `ring` computes in generic code:
    // a new connection cost 1.5 ms of CPU (client and receiver together) against 0.66 ms with
    // X25519 first (docs/pusher-webhooks.md#cost); every receiver's TLS offers X25519.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![
        rustls::crypto::ring::kx_group::X25519,
        rustls::crypto::ring::kx_group::SECP256R1,
        rustls::crypto::ring::kx_group::SECP384R1,
    ];
    let provider = Arc::new(provider);
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(CaError::Config)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One POST's connection: plain, or TLS over the TCP stream.
pub enum Stream {
    /// `http://`.
    Plain(TcpStream),
    /// `https://`, after its handshake.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// The TCP socket, for its timeouts.
    #[must_use]
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref(),
        }
    }

    /// Runs the TLS handshake over `tcp` with `config` for `host` (SNI for a name, none for
    /// an IP address; the certificate must name `host` either way). The caller has set the
    /// socket's timeouts.
    ///
    /// # Errors
    /// [`PostError::Tls`] for a refused certificate, a name mismatch or a failed handshake;
    /// [`PostError::Timeout`] / [`PostError::Io`] for the socket.
    pub fn tls(
        config: &Arc<ClientConfig>,
        host: &str,
        tcp: TcpStream,
    ) -> Result<Stream, PostError> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| PostError::Tls(rustls::Error::General(format!("server name: {e}"))))?;
        let conn = ClientConnection::new(config.clone(), name).map_err(PostError::Tls)?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(stream_error)?;
        }
        Ok(Stream::Tls(Box::new(stream)))
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}
