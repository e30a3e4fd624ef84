//! `ringcast`: the io_uring thread-per-core WebSocket server.
//!
//! The main thread binds one `SO_REUSEPORT` listener per worker, starts the workers, prints the
//! listening line once every worker accepts, then waits for SIGINT/SIGTERM and drains.

mod affinity;
mod bridge;
mod config;
mod conn;
mod deflate;
mod fanout;
mod limits;
mod metrics;
mod pubsub;
mod pusher;
mod refusal;
mod ring;
mod rooms;
mod session;
mod shared;
mod tls;
mod webhooks;
mod worker;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mimalloc::MiMalloc;
use socket2::{Domain, Protocol, Socket, Type};

use crate::affinity::{AllowedCpus, pin_current_thread};
use crate::bridge::Bridge;
use crate::config::{Config, LogFormat};
use crate::fanout::bus::{Inbound, InboundSlot};
use crate::fanout::{Peers, Remote};
use crate::shared::Shared;
use crate::tls::TlsAcceptor;
use crate::webhooks::{WebhookConfig, Webhooks};
use crate::worker::Worker;
use crate::worker::sq::Waker;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// How long a cluster node waits for its Redis links before it prints its listening line
/// anyway (docs/cluster.md#starting): past the bus's reconnect backoff after ~1 s down.
const CLUSTER_START_WAIT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let config = match Config::load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("ringcast: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(config.log_format);
    // A missing, unreadable or mismatched certificate or key stops the start (exit 2), with
    // one line naming the file (docs/running.md#tls).
    let tls = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => match TlsAcceptor::load(cert, key) {
            Ok(acceptor) => Some(Arc::new(acceptor)),
            Err(e) => {
                eprintln!("ringcast: {e}");
                return ExitCode::from(2);
            }
        },
        _ => None,
    };
    match serve(config, tls) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("ringcast: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RINGCAST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn listener(addr: SocketAddr) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket)
}

/// Raised by a worker thread that ended (see [`report_exit`]), so the main thread's `sigwait`
/// notices at once.
const WORKER_EXITED: libc::c_int = libc::SIGUSR1;

/// Blocks SIGINT, SIGTERM, SIGHUP (reload the TLS certificate) and [`WORKER_EXITED`] in this
/// thread and every thread it spawns, so only `sigwait` in the main thread sees them.
fn block_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; the calls only read and write the local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::sigaddset(&mut set, WORKER_EXITED);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// When the next `--tls-reload-interval` check is due.
struct Reload {
    every: Duration,
    next: Instant,
}

impl Reload {
    fn new(every: Duration) -> Reload {
        Reload {
            every,
            next: Instant::now() + every,
        }
    }
}

/// The next blocked signal; None when `reload`'s check falls due first (the one after it is
/// then scheduled).
fn wait_signal(set: &libc::sigset_t, reload: Option<&mut Reload>) -> Option<libc::c_int> {
    let Some(reload) = reload else {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` holds the blocked signals; sigwait writes the one received into `sig`.
        unsafe {
            libc::sigwait(set, &mut sig);
        }
        return Some(sig);
    };
    loop {
        let left = reload.next.saturating_duration_since(Instant::now());
        if left.is_zero() {
            reload.next = Instant::now() + reload.every;
            return None;
        }
        let timeout = libc::timespec {
            tv_sec: left.as_secs() as libc::time_t,
            tv_nsec: left.subsec_nanos().into(),
        };
        // SAFETY: `set` holds the blocked signals; no siginfo is asked for; `timeout` is a
        // valid timespec for the call.
        let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &timeout) };
        if sig > 0 {
            return Some(sig);
        }
        // EAGAIN (the time is up) or EINTR: the loop looks at the clock again.
    }
}

/// Raises the soft open-file limit to the hard one (each connection is a descriptor) and warns
/// when `--max-connections` cannot be reached with it (issue 14 row 2).
fn raise_fd_limit(max_connections: usize) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the local struct only.
    let ok = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && {
            if lim.rlim_cur < lim.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: lim.rlim_max,
                    rlim_max: lim.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    lim = raised;
                }
            }
            true
        }
    };
    if ok && (max_connections as u64) > lim.rlim_cur {
        tracing::warn!(
            max_connections,
            fd_limit = lim.rlim_cur,
            "--max-connections exceeds the open-file limit (RLIMIT_NOFILE): accepts past it \
             fail and back off; raise the hard limit (ulimit -Hn, LimitNOFILE=)"
        );
    }
}

/// How a worker thread ended: sent on the exit channel, then [`WORKER_EXITED`] is raised.
type Exit = (usize, Result<(), String>);

/// Runs a worker thread's body; however it ends (returned, failed, panicked), tells the main
/// thread on `exits` and raises [`WORKER_EXITED`] so its `sigwait` returns (issue 14 row 3).
fn report_exit(
    id: usize,
    exits: &crossbeam_channel::Sender<Exit>,
    body: impl FnOnce() -> Result<(), String>,
) {
    let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => Err(match payload.downcast_ref::<&str>() {
            Some(msg) => format!("panicked: {msg}"),
            None => match payload.downcast_ref::<String>() {
                Some(msg) => format!("panicked: {msg}"),
                None => "panicked".to_string(),
            },
        }),
    };
    let _ = exits.send((id, result));
    // SAFETY: kill(2) with our own pid and a signal every thread blocks: main's sigwait takes it.
    unsafe {
        libc::kill(libc::getpid(), WORKER_EXITED);
    }
}

fn serve(config: Config, tls: Option<Arc<TlsAcceptor>>) -> Result<(), Box<dyn std::error::Error>> {
    let sigset = block_signals();
    // SAFETY: ignoring SIGPIPE only changes how a write to a closed socket is reported (EPIPE).
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    if config.allowed_origins.is_empty() {
        tracing::warn!(
            "--allowed-origins is not set: any web page may open WebSockets to this server"
        );
    }
    raise_fd_limit(config.max_connections);
    let n = config.workers;
    let first = listener(config.listen)?;
    let bound = first
        .local_addr()?
        .as_socket()
        .ok_or("listener has no inet address")?;
    let mut listeners = vec![first];
    for _ in 1..n {
        listeners.push(listener(bound)?);
    }
    // `--plain-listen`: one more listener per worker, accepted on every worker too.
    let mut plain_listeners = Vec::new();
    let mut plain_bound = None;
    if let Some(addr) = config.plain_listen {
        let first = listener(addr)?;
        let addr = (first.local_addr()?.as_socket()).ok_or("plain listener has no inet address")?;
        plain_listeners.push(Some(first));
        for _ in 1..n {
            plain_listeners.push(Some(listener(addr)?));
        }
        plain_bound = Some(addr);
    } else {
        plain_listeners.resize_with(n, || None);
    }
    // The server API's own listener (docs/api.md#listeners), one per worker like the main one.
    let (mut api_listeners, api_bound) = match config.api_listen {
        Some(addr) => {
            let first = listener(addr)?;
            let bound = first.local_addr()?.as_socket().ok_or("no inet address")?;
            let mut all = vec![first];
            for _ in 1..n {
                all.push(listener(bound)?);
            }
            (all.into_iter().map(Some).collect(), Some(bound))
        }
        None => (Vec::new(), None),
    };
    api_listeners.resize_with(n, || None);
    // Made before any worker accepts: at the descriptor limit it could not be made later.
    let mut waker = Waker::new()?;
    let shared = Shared::new(config, n);
    // Bus events that need the workers wait in `inbound` until they run (none can come
    // earlier: nothing is subscribed before a client joins).
    let inbound = InboundSlot::default();
    let forward = inbound.clone();
    let bridge = Bridge::start(&shared.config, &shared.hub.node_id, move |e| {
        forward.handle(e)
    })?;
    let clustered = bridge.is_some();
    let webhooks = match shared.config.pusher.clone() {
        Some(apps) if apps.all().iter().any(|a| !a.webhooks.is_empty()) => {
            let config = WebhookConfig {
                ca_file: shared.config.pusher_webhook_ca.clone(),
                ..WebhookConfig::default()
            };
            Webhooks::start(apps, config)?
        }
        _ => Webhooks::disabled(),
    };
    let shared = Arc::new(shared.with_cluster(bridge).with_webhooks(webhooks));
    let note_expiry = |t: &TlsAcceptor| {
        (shared.tls_not_after).store(
            t.not_after().unwrap_or(0),
            std::sync::atomic::Ordering::Relaxed,
        )
    };
    if let Some(t) = &tls {
        note_expiry(t);
    }
    let (senders, receivers) = Peers::channels(n);
    let cpus = (!shared.config.no_pin).then(AllowedCpus::current);
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
    let (exit_tx, exit_rx) = crossbeam_channel::unbounded::<Exit>();
    let mut peer_txs = Vec::new();
    let mut handles = Vec::new();
    let per_worker = (listeners.into_iter().zip(plain_listeners))
        .zip(receivers)
        .zip(api_listeners);
    for (id, (((sock, plain), rx), api_sock)) in per_worker.enumerate() {
        let shared = shared.clone();
        let tls = tls.clone();
        let cpus = cpus.clone();
        let ready_tx = ready_tx.clone();
        let exit_tx = exit_tx.clone();
        let (peers_tx, peers_rx) = crossbeam_channel::bounded::<Peers>(1);
        peer_txs.push(peers_tx);
        let handle = std::thread::Builder::new()
            .name(format!("ringcast-w{id}"))
            .spawn(move || {
                report_exit(id, &exit_tx, || {
                    if let Some(cpus) = &cpus {
                        let cpu = cpus.for_worker(id);
                        if let Err(e) = pin_current_thread(cpu) {
                            tracing::warn!(worker = id, cpu, "could not pin the worker: {e}");
                        }
                    }
                    let mut worker = match Worker::new(id, shared, sock, rx) {
                        Ok(w) => w.with_tls(tls, plain),
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return Err(e.to_string());
                        }
                    };
                    if let Some(api_sock) = api_sock {
                        worker.set_api_listener(api_sock);
                    }
                    let _ = ready_tx.send(Ok((id, worker.ring_fd())));
                    let peers = peers_rx.recv().map_err(|e| e.to_string())?;
                    worker.start(peers).map_err(|e| e.to_string())?;
                    let _ = ready_tx.send(Ok((id, -1)));
                    worker.run().map_err(|e| e.to_string())
                })
            })?;
        handles.push(handle);
    }
    let mut ring_fds = vec![-1; n];
    for _ in 0..n {
        let (id, fd) = ready_rx.recv()??;
        ring_fds[id] = fd;
    }
    let peers = Peers::new(senders, ring_fds);
    for tx in &peer_txs {
        tx.send(peers.clone())?;
    }
    if clustered {
        // Bus events reach the workers like a batch from another worker, woken by a ring of
        // the bus thread's own.
        let mut waker = Waker::new()?;
        let wake = move |fd| {
            if let Err(e) = waker.wake(fd) {
                tracing::warn!(error = %e, "cluster bus: waking a worker failed");
            }
        };
        inbound.fill(Inbound::new(shared.clone(), peers.clone(), Box::new(wake)));
    }
    for _ in 0..n {
        ready_rx.recv()??;
    }
    // A cluster node announces itself once it can reach every Redis shard, or after
    // `CLUSTER_START_WAIT` without them (it serves its own clients meanwhile).
    if let Some(bus) = &shared.cluster
        && !bus.wait_up(CLUSTER_START_WAIT)
    {
        tracing::warn!(
            waited_s = CLUSTER_START_WAIT.as_secs(),
            "cluster bus: Redis not reachable yet; starting anyway, and what clients publish \
             is dropped (counted) until it is"
        );
    }
    // One line: scripts read the first line for the port.
    let scheme = if tls.is_some() { "wss" } else { "ws" };
    let plain = plain_bound.map_or(String::new(), |p| format!(" and ws://{p}/"));
    let api = api_bound.map_or(String::new(), |a| {
        format!(", server API on http://{a}/api/")
    });
    println!("ringcast listening on {scheme}://{bound}/{plain} ({n} workers){api}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    tracing::info!(%bound, workers = n, "accepting connections");

    // Workers run until a signal asks them to drain, or until one of them fails.
    let every = shared.config.tls_reload_interval.filter(|_| tls.is_some());
    let mut reload = every.map(|s| Reload::new(Duration::from_secs_f64(s)));
    let mut draining = false;
    let mut running = n;
    while running > 0 {
        let Some(sig) = wait_signal(&sigset, reload.as_mut()) else {
            // --tls-reload-interval: files that changed are loaded as on SIGHUP.
            match tls.as_ref().and_then(|t| t.reload_if_changed()) {
                Some(Ok(())) => tracing::info!("TLS certificate and key changed: reloaded"),
                Some(Err(e)) => tracing::error!("TLS reload failed, keeping the old pair: {e}"),
                None => {}
            }
            tls.as_deref().map(note_expiry);
            continue;
        };
        if sig == WORKER_EXITED {
            while let Ok((id, result)) = exit_rx.try_recv() {
                running -= 1;
                match result {
                    Ok(()) if draining => {}
                    Ok(()) => return Err(format!("worker {id} stopped unexpectedly").into()),
                    // The process ends now: its sockets close with it, nobody stays connected
                    // to a half-alive server (a supervisor restarts it).
                    Err(e) => return Err(format!("worker {id} failed: {e}").into()),
                }
            }
        } else if sig == libc::SIGHUP {
            // A renewed certificate (docs/running.md#tls): new connections get it, open ones
            // keep theirs; a bad pair changes nothing. Without TLS, SIGHUP is ignored.
            match tls.as_ref().map(|t| t.reload()) {
                Some(Ok(())) => {
                    tls.as_deref().map(note_expiry);
                    tracing::info!("TLS certificate and key reloaded")
                }
                Some(Err(e)) => tracing::error!("TLS reload failed, keeping the old pair: {e}"),
                None => tracing::info!("SIGHUP ignored: no --tls-cert"),
            }
        } else if draining {
            tracing::warn!(signal = sig, "second signal during the drain: exiting now");
            std::process::exit(1);
        } else {
            draining = true;
            tracing::info!(signal = sig, "draining: sending Close 1001 to every client");
            for to in 0..n {
                if let Some(fd) = peers.send(to, Remote::Drain) {
                    waker.wake(fd)?;
                }
            }
        }
    }
    for h in handles {
        let _ = h.join();
    }
    if let Some(bus) = &shared.cluster {
        // After the drain every member has left: this removes what presence is left and stops
        // the bus thread.
        bus.shutdown();
    }
    tracing::info!("drained, exiting");
    Ok(())
}
