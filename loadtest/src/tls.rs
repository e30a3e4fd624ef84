//! `wss://` targets: a rustls client per connection between the driver's buffers and the
//! frame code. The driver's plaintext buffers (`Conn::out`, `Conn::rbuf`) stay what they are;
//! a TLS connection encrypts `out` into `sending` at each flush and receives ciphertext into
//! its own buffer, whose plaintext is appended to `rbuf`.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore};

/// How a `wss://` server's certificate is checked.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Certificates in this PEM file are the roots (`--ca FILE`).
    Ca(std::path::PathBuf),
    /// Nothing is checked (`--insecure`: a self-signed test certificate).
    Insecure,
}

/// The client configuration every `wss://` connection shares: TLS 1.3 and 1.2, ALPN
/// `http/1.1`, the `ring` provider; sessions are resumed when the server offers it, unless
/// `resume` is false (`--no-resume`: every handshake is a full one).
pub fn client_config(trust: &Trust, resume: bool) -> Result<Arc<ClientConfig>, String> {
    // X25519 first, as browsers and OpenSSL offer it. rustls 0.23.48's `ring` provider lists
    // P-384 first, and servers take the client's first group: ring computes P-384 with generic
    // big-number code, so each handshake cost the server ~4x the CPU (ringcast: ~1,400 instead
    // of ~5,700 handshakes per CPU-second), which is not what real clients cost it.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::CryptoProvider {
        kx_groups: vec![
            rustls::crypto::ring::kx_group::X25519,
            rustls::crypto::ring::kx_group::SECP256R1,
            rustls::crypto::ring::kx_group::SECP384R1,
        ],
        ..rustls::crypto::ring::default_provider()
    });
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut config = match trust {
        Trust::Ca(file) => builder
            .with_root_certificates(roots(file)?)
            .with_no_client_auth(),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// The certificates of a PEM file as a root store.
fn roots(file: &Path) -> Result<RootCertStore, String> {
    let what = |e: &dyn std::fmt::Display| format!("--ca {}: {e}", file.display());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(file).map_err(|e| what(&e))? {
        roots
            .add(cert.map_err(|e| what(&e))?)
            .map_err(|e| what(&e))?;
    }
    if roots.is_empty() {
        return Err(what(&"no certificate in it"));
    }
    Ok(roots)
}

/// `--insecure`: any certificate is accepted; signatures are still checked so that the
/// handshake costs what a verifying client's does, but the chain and name are not.
#[derive(Debug)]
struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Ciphertext received per RECV.
const CIPHER_BUF: usize = 32 * 1024;

/// One connection's TLS client.
#[derive(Debug)]
pub struct TlsLayer {
    conn: ClientConnection,
    /// Where the kernel writes received ciphertext (the RECV's buffer while one is in flight).
    pub(crate) cbuf: Vec<u8>,
}

impl TlsLayer {
    /// A client for the server named `host` (SNI; an IP address sends none).
    pub fn new(config: &Arc<ClientConfig>, host: &str) -> Result<TlsLayer, String> {
        let name = ServerName::try_from(host.to_owned()).map_err(|e| format!("{host}: {e}"))?;
        let conn = ClientConnection::new(config.clone(), name).map_err(|e| e.to_string())?;
        Ok(TlsLayer {
            conn,
            cbuf: vec![0; CIPHER_BUF],
        })
    }

    /// The handshake resumed an earlier TLS session (no certificate, no signature).
    pub fn resumed(&self) -> bool {
        self.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
    }

    /// Records are waiting to be sent (handshake messages, or encrypted plaintext).
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Encrypts `plain` (emptied; held by rustls until the handshake is done) and appends
    /// every record ready to go to `sending`.
    pub fn seal(&mut self, plain: &mut Vec<u8>, sending: &mut Vec<u8>) {
        if !plain.is_empty() {
            // Writing into rustls' unbounded buffer takes everything.
            let _ = self.conn.writer().write_all(plain);
            plain.clear();
        }
        while self.conn.wants_write() {
            // Writing into a Vec cannot fail.
            if self.conn.write_tls(sending).is_err() {
                break;
            }
        }
    }

    /// Takes `n` received bytes of `cbuf` and appends the plaintext they carry to
    /// `rbuf[*rend..]` (grown as needed); returns how many plaintext bytes that was.
    pub fn open(
        &mut self,
        n: usize,
        rbuf: &mut Vec<u8>,
        rend: &mut usize,
    ) -> Result<usize, String> {
        let mut rest = &self.cbuf[..n];
        let mut got = 0;
        while !rest.is_empty() {
            self.conn.read_tls(&mut rest).map_err(|e| e.to_string())?;
            self.conn.process_new_packets().map_err(|e| e.to_string())?;
            loop {
                if *rend == rbuf.len() {
                    let grown = (rbuf.len() * 2).max(CIPHER_BUF);
                    rbuf.resize(grown, 0);
                }
                match self.conn.reader().read(&mut rbuf[*rend..]) {
                    Ok(0) => break,
                    Ok(k) => {
                        *rend += k;
                        got += k;
                    }
                    // WouldBlock: no more plaintext for now.
                    Err(_) => break,
                }
            }
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA-less self-signed certificate for `localhost` in PEM files, and a server config.
    fn server() -> (std::path::PathBuf, Arc<rustls::ServerConfig>) {
        let dir = std::env::temp_dir().join(format!("loadtest-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
        let pem = dir.join("cert.pem");
        std::fs::write(&pem, ck.cert.pem()).expect("write");
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.key_pair.serialize_der().into());
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![ck.cert.der().clone()], key)
            .expect("server config");
        (pem, Arc::new(config))
    }

    /// Moves what `client` wants sent into `server`, and the server's answer back into the
    /// client's receive buffer; returns the plaintext the client got.
    fn exchange(
        client: &mut TlsLayer,
        out: &mut Vec<u8>,
        server: &mut rustls::ServerConnection,
        rbuf: &mut Vec<u8>,
        rend: &mut usize,
    ) -> usize {
        let mut sending = Vec::new();
        client.seal(out, &mut sending);
        let mut rest = &sending[..];
        while !rest.is_empty() {
            server.read_tls(&mut rest).expect("server reads");
            server.process_new_packets().expect("server accepts");
        }
        let mut echo = Vec::new();
        let _ = server.reader().read_to_end(&mut echo);
        if !echo.is_empty() {
            server.writer().write_all(&echo).expect("echo");
        }
        let mut back = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut back).expect("server writes");
        }
        client.cbuf[..back.len()].copy_from_slice(&back);
        client.open(back.len(), rbuf, rend).expect("client accepts")
    }

    #[test]
    fn a_request_written_before_the_handshake_goes_out_after_it_and_the_answer_is_read() {
        let (pem, server_config) = server();
        for trust in [Trust::Ca(pem.clone()), Trust::Insecure] {
            let config = client_config(&trust, true).expect("client config");
            let mut client = TlsLayer::new(&config, "localhost").expect("client");
            let mut server = rustls::ServerConnection::new(server_config.clone()).expect("server");
            let mut out = b"GET / HTTP/1.1\r\n\r\n".to_vec();
            let (mut rbuf, mut rend) = (Vec::new(), 0);
            let mut got = 0;
            for _ in 0..4 {
                got += exchange(&mut client, &mut out, &mut server, &mut rbuf, &mut rend);
            }
            assert!(out.is_empty());
            assert_eq!(
                got, 18,
                "the server echoed the request once the handshake was done"
            );
            assert_eq!(&rbuf[..rend], b"GET / HTTP/1.1\r\n\r\n");
        }
        let wrong = client_config(&Trust::Ca("/nonexistent.pem".into()), true);
        assert!(wrong.is_err_and(|e| e.contains("/nonexistent.pem")));
        let _ = std::fs::remove_file(pem);
    }
}
