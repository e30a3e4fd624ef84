//! TLS in user space, between the ring and the session (docs/running.md#tls).
//!
//! The kernel here has no kTLS, so records are decrypted and encrypted on the worker, with
//! rustls 0.23's unbuffered API (`UnbufferedServerConnection`) behind this module's small
//! surface (rustls 0.24 replaces that API; only this module would change):
//!
//! - [`TlsAcceptor`]: the certificate chain and key, loaded once at start (a one-line error
//!   naming the file otherwise), TLS 1.3 and 1.2, ALPN `http/1.1`, the `ring` provider
//!   (AES-NI / VAES).
//! - [`TlsConn`] (`conn.rs`): one connection. Received records are decrypted in the provided
//!   buffer they arrived in (an unfinished record's bytes wait in a buffer of the connection,
//!   allocated then and released when it empties); the plaintext goes to `Session::feed`
//!   unchanged. Outbound, the sendable chunks of the connection's `OutQueue` are encrypted as
//!   one run of records (a turn's frames for one receiver share a record; records are filled
//!   to 16 KiB) into a [`cipher::CipherBuf`], which the kernel reads while the send is in
//!   flight and which is released once sent (its buffer back to the worker's spares,
//!   `records.rs`, so sends do not allocate). The plaintext stays in the `OutQueue`, marked in
//!   flight, until its ciphertext has been sent, so encrypted bytes count towards
//!   `--max-backpressure` like plain ones. rustls itself holds no record buffer, so an idle
//!   TLS connection costs its keys and state only (about 3 KiB over a plain one at 10,000
//!   connections, bench/tls-idle-memory.py; the buffered `ServerConnection` cost 7 KiB).
//! - `expiry.rs`: the leaf certificate's notAfter, for `/metrics`
//!   (`ringcast_tls_certificate_expiry_seconds`), read at each load.
//! - [`Failure`]: why a connection's TLS failed, as the `reason` label of
//!   `ringcast_tls_handshake_failures_total` (docs/metrics.md#tls).
//!
//! Plain connections never reach this module: the worker branches once on `Conn::tls`.

pub mod cipher;
mod conn;
mod expiry;
mod failure;
mod records;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, RwLock};

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;

pub use self::conn::{Received, TlsConn};
pub use self::failure::Failure;

/// The certificate or key could not be used at start-up.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file could not be read or holds no usable PEM item.
    #[error("cannot read TLS {what} {path}: {message}")]
    File {
        /// "certificate" or "key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// rustls refused the pair (the key does not match the certificate, an unsupported key).
    #[error("TLS certificate {cert} and key {key} cannot be used together: {message}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        message: String,
    },
}

/// What every TLS connection starts from: the server configuration, shared by all workers.
/// SIGHUP (and `--tls-reload-interval`) reloads the certificate and key from the same files
/// ([`TlsAcceptor::reload`]): new connections get the new pair, open ones keep theirs.
pub struct TlsAcceptor {
    /// Read once per accepted connection (uncontended); written only by a reload.
    config: RwLock<Arc<ServerConfig>>,
    cert: PathBuf,
    key: PathBuf,
    /// The leaf certificate's notAfter (unix seconds) of the pair in use; 0 if unreadable.
    not_after: AtomicI64,
    /// The files as they were when last loaded: a timed reload skips files that did not
    /// change (a new `ServerConfig` would forget the session cache, so no resumption).
    stamp: Mutex<Stamp>,
}

/// What tells a changed file: modification time, size and inode of the certificate and key.
type Stamp = Option<[(std::time::SystemTime, u64, u64); 2]>;

/// The files' stamp now (None if one cannot be read: a reload then says why).
fn stamp(cert: &Path, key: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let one = |p: &Path| {
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len(), m.ino()))
    };
    Some([one(cert)?, one(key)?])
}

impl TlsAcceptor {
    /// Loads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1) and checks
    /// that they belong together.
    pub fn load(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
        let before = stamp(cert, key);
        let (config, not_after) = server_config(cert, key)?;
        Ok(TlsAcceptor {
            config: RwLock::new(config),
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            not_after: AtomicI64::new(not_after.unwrap_or(0)),
            stamp: Mutex::new(before),
        })
    }

    /// Loads the certificate and key again from their files (a renewed certificate): on
    /// success new connections use them; on an error nothing changes and the error says why.
    pub fn reload(&self) -> Result<(), TlsError> {
        let before = stamp(&self.cert, &self.key);
        let (fresh, not_after) = server_config(&self.cert, &self.key)?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        self.not_after.store(not_after.unwrap_or(0), Relaxed);
        *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = before;
        Ok(())
    }

    /// [`TlsAcceptor::reload`] if either file changed since it was last loaded (None: they
    /// did not). A pair that fails to load is tried again at the next call.
    pub fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let now = stamp(&self.cert, &self.key);
        let last = *self.stamp.lock().unwrap_or_else(|e| e.into_inner());
        if now.is_some() && now == last {
            return None;
        }
        let result = self.reload();
        if result.is_err() {
            // Not retried until the files change again, nor logged every interval.
            *self.stamp.lock().unwrap_or_else(|e| e.into_inner()) = now;
        }
        Some(result)
    }

    /// The leaf certificate's notAfter in use, as unix seconds (None if it could not be read).
    pub fn not_after(&self) -> Option<i64> {
        Some(self.not_after.load(Relaxed)).filter(|&t| t != 0)
    }

    /// A new server-side TLS connection, waiting for the ClientHello.
    pub fn accept(&self) -> Box<TlsConn> {
        let config = self
            .config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Box::new(TlsConn::new(config))
    }
}

/// The server configuration for a PEM certificate chain and its key, and the leaf
/// certificate's notAfter.
fn server_config(cert: &Path, key: &Path) -> Result<(Arc<ServerConfig>, Option<i64>), TlsError> {
    let file_error = |what, path: &Path, message: String| TlsError::File {
        what,
        path: path.to_path_buf(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|items| items.collect())
        .map_err(|e| file_error("certificate", cert, pem_message(e)))?;
    if certs.is_empty() {
        return Err(file_error(
            "certificate",
            cert,
            "no CERTIFICATE in it".into(),
        ));
    }
    let not_after = expiry::not_after(&certs[0]);
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| file_error("key", key, pem_message(e)))?;
    // `ring` builds in seconds and uses AES-NI/VAES; rustls deprecates its provider only
    // because it has no post-quantum key exchange (X25519MLKEM768 needs `aws-lc-rs`).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions = [&rustls::version::TLS13, &rustls::version::TLS12];
    let pair_error = |e: rustls::Error| TlsError::Pair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        message: e.to_string(),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(pair_error)?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(pair_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // One TLS 1.3 ticket is enough for a WebSocket client to resume once.
    config.send_tls13_tickets = 1;
    Ok((Arc::new(config), not_after))
}

/// A PEM error in one line ("no items found" reads better as what it means here).
fn pem_message(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of the expected kind".into(),
        rustls::pki_types::pem::Error::Io(e) => e.to_string(),
        e => e.to_string(),
    }
}

/// A worker's TLS side: the acceptor (when `--tls-cert` is set) and one plaintext buffer that
/// every connection's decrypted bytes pass through, lent to the session for one call (so an
/// idle connection holds none).
#[derive(Default)]
pub struct WorkerTls {
    acceptor: Option<Arc<TlsAcceptor>>,
    plain: Vec<u8>,
}

/// Plaintext taken out of rustls per `Session::feed` call: one full record.
const PLAIN_CHUNK: usize = 16 * 1024;

impl WorkerTls {
    /// The TLS side of a worker serving with `acceptor` (None: plain only).
    pub fn new(acceptor: Option<Arc<TlsAcceptor>>) -> WorkerTls {
        WorkerTls {
            acceptor,
            plain: Vec::new(),
        }
    }

    /// A TLS connection for a socket accepted on the TLS listener (None without TLS).
    pub fn accept(&self) -> Option<Box<TlsConn>> {
        self.acceptor.as_ref().map(|a| a.accept())
    }

    /// Feeds `ciphertext` to `conn` and every plaintext byte it yields to `feed`, in order.
    pub fn receive(
        &mut self,
        conn: &mut TlsConn,
        ciphertext: &mut [u8],
        feed: impl FnMut(&mut [u8]),
    ) -> Result<Received, Failure> {
        if self.plain.is_empty() {
            self.plain = vec![0; PLAIN_CHUNK];
        }
        conn.receive(ciphertext, &mut self.plain, feed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh self-signed pair written to `dir` as cert.pem and key.pem.
    fn write_pair(dir: &Path) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("pair");
        std::fs::write(dir.join("cert.pem"), ck.cert.pem()).expect("cert");
        std::fs::write(dir.join("key.pem"), ck.key_pair.serialize_pem()).expect("key");
    }

    fn current(a: &TlsAcceptor) -> Arc<ServerConfig> {
        a.config.read().expect("lock").clone()
    }

    #[test]
    fn a_reload_takes_a_renewed_pair_and_a_bad_one_changes_nothing() {
        let dir = std::env::temp_dir().join(format!("ringcast-reload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        write_pair(&dir);
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let acceptor = TlsAcceptor::load(&cert, &key).expect("load");
        let first = current(&acceptor);
        std::fs::write(&key, "not a key").expect("garbage");
        assert!(matches!(acceptor.reload(), Err(TlsError::File { .. })));
        assert!(
            Arc::ptr_eq(&first, &current(&acceptor)),
            "the old pair stays"
        );
        write_pair(&dir);
        acceptor.reload().expect("renewed pair");
        assert!(
            !Arc::ptr_eq(&first, &current(&acceptor)),
            "new connections get it"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
