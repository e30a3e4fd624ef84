//! `peer`: the reference broadcast server the end-to-end benchmarks compare ringcast against.
//!
//! Written the way a competent tokio user would write it, with no tricks:
//! - a multi-thread tokio runtime (`--workers N`, default: available cores);
//! - one task per connection for reading, one writer task per connection;
//! - an **unbounded** `tokio::sync::mpsc` channel per client (a slow client grows its queue without
//!   limit; that is the usual choice and what the measured peer in PERFORMANCE.md did);
//! - a room registry keyed by the first offered `Sec-WebSocket-Protocol` token (echoed back in the
//!   101 via tungstenite's `accept_hdr_async` callback); no header joins room `lobby` and the
//!   response carries no protocol header;
//! - the writer feeds everything queued, then flushes once;
//! - no echo to the sender unless `--echo`;
//! - with `--tls-cert`/`--tls-key`, `wss://` through tokio-rustls (rustls 0.23, `ring`, TLS 1.3
//!   and 1.2, ALPN `http/1.1`): the TLS handshake in the connection's task, then the same code.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use mimalloc::MiMalloc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpSocket;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// Command line of the reference peer.
#[derive(Parser, Debug)]
#[command(about = "tokio + tokio-tungstenite reference broadcast server")]
struct Args {
    /// Address to listen on; `127.0.0.1:0` binds an ephemeral port.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
    /// Also deliver each message back to its sender.
    #[arg(long)]
    echo: bool,
    /// Runtime worker threads (default: available cores).
    #[arg(long)]
    workers: Option<usize>,
    /// PEM certificate chain: with --tls-key, serve wss:// (tokio-rustls).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

/// The TLS acceptor for `--tls-cert`/`--tls-key`.
fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::io::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |e: &dyn std::fmt::Display| std::io::Error::other(e.to_string());
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|c| c.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(&e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(&e))?;
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The members of one room: client id → that client's outbound queue.
type Members = Mutex<HashMap<u64, mpsc::UnboundedSender<Message>>>;

/// Room name → members.
#[derive(Default)]
struct Registry {
    rooms: RwLock<HashMap<String, Arc<Members>>>,
}

impl Registry {
    fn join(&self, room: &str, id: u64, tx: mpsc::UnboundedSender<Message>) -> Arc<Members> {
        let existing = self
            .rooms
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(room)
            .cloned();
        let members = match existing {
            Some(m) => m,
            None => self
                .rooms
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entry(room.to_owned())
                .or_default()
                .clone(),
        };
        members
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        members
    }
}

fn main() {
    let args = Args::parse();
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("peer: cannot start the runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(serve(args, workers)) {
        eprintln!("peer: {e}");
        std::process::exit(1);
    }
}

async fn serve(args: Args, workers: usize) -> std::io::Result<()> {
    // `TcpListener::bind` listens with a backlog of 128, which overflows (and costs 1 s SYN
    // retransmits) when a load generator opens thousands of connections; ask for 4096.
    let socket = if args.listen.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(args.listen)?;
    let listener = socket.listen(4096)?;
    let addr = listener.local_addr()?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    println!("peer listening on {scheme}://{addr}/ ({workers} workers)");
    let registry = Arc::new(Registry::default());
    let next_id = AtomicU64::new(0);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: keep serving the connections we have.
                eprintln!("peer: accept: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let _ = stream.set_nodelay(true);
        let (registry, echo) = (registry.clone(), args.echo);
        match &tls {
            None => drop(tokio::spawn(client(stream, id, registry, echo))),
            Some(tls) => {
                let accept = tls.accept(stream);
                tokio::spawn(async move {
                    if let Ok(stream) = accept.await {
                        client(stream, id, registry, echo).await;
                    }
                });
            }
        }
    }
}

/// First token of `Sec-WebSocket-Protocol`, if any.
fn first_protocol(req: &Request) -> Option<String> {
    let value = req.headers().get("sec-websocket-protocol")?.to_str().ok()?;
    value
        .split(',')
        .map(str::trim)
        .find(|t| !t.is_empty())
        .map(str::to_owned)
}

async fn client<S>(stream: S, id: u64, registry: Arc<Registry>, echo: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut room = None;
    // The callback's signature (with its large error type) is tungstenite's, not ours.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        if let Some(token) = first_protocol(req) {
            if let Ok(v) = HeaderValue::from_str(&token) {
                resp.headers_mut().insert("sec-websocket-protocol", v);
            }
            room = Some(token);
        }
        Ok(resp)
    };
    let ws = match tokio_tungstenite::accept_hdr_async(stream, callback).await {
        Ok(ws) => ws,
        Err(_) => return,
    };
    let room = room.unwrap_or_else(|| "lobby".to_owned());
    let (mut sink, mut source) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let members = registry.join(&room, id, tx);

    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if sink.feed(msg).await.is_err() {
                return;
            }
            while let Ok(more) = rx.try_recv() {
                if sink.feed(more).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });

    while let Some(Ok(msg)) = source.next().await {
        match msg {
            Message::Text(_) | Message::Binary(_) => {
                let members = members.lock().unwrap_or_else(|e| e.into_inner());
                for (&other, tx) in members.iter() {
                    if other != id || echo {
                        let _ = tx.send(msg.clone());
                    }
                }
            }
            Message::Close(_) => break,
            // tungstenite answers pings itself; pongs and raw frames need nothing.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
        }
    }
    // Dropping our sender (the last one once removed from the room) ends the writer.
    members
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    let _ = writer.await;
}
