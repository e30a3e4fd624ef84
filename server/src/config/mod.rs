//! Settings: CLI flags, `RINGCAST_*` environment variables and an optional TOML file.
//!
//! Precedence: flag > environment > file > built-in default.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};
use ringcast_pubsub::auth::{Verifier, secret_from_file};

pub use self::error::ConfigError;
pub use self::values::{LogFormat, Secret, Switch};

mod error;
mod values;

/// ringcast: an io_uring WebSocket chat and pub/sub server. Each subprotocol is a room.
#[derive(Debug, Clone, Parser)]
#[command(version, about, args_override_self = true)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "RINGCAST_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// PEM certificate chain: with --tls-key, --listen serves wss:// and https:// (TLS 1.3 and
    /// 1.2, ALPN http/1.1; docs/running.md#tls).
    #[arg(long, env = "RINGCAST_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "RINGCAST_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Seconds between checks of --tls-cert and --tls-key: files that changed are loaded as
    /// SIGHUP would (unset: SIGHUP only; docs/running.md#tls).
    #[arg(long, env = "RINGCAST_TLS_RELOAD_INTERVAL", requires = "tls_cert")]
    pub tls_reload_interval: Option<f64>,
    /// A second listener serving plain ws:// and http:// beside --listen (for an internal
    /// network or metrics scrapes), on the same workers, rooms and topics.
    #[arg(long, env = "RINGCAST_PLAIN_LISTEN")]
    pub plain_listen: Option<SocketAddr>,
    /// Worker threads, each with its own io_uring, pinned to the allowed CPUs in turn
    /// (0 = one per available core).
    #[arg(long, env = "RINGCAST_WORKERS", default_value_t = 0)]
    pub workers: usize,
    /// TOML file with any of these settings (keys as the long flag names).
    #[arg(long, env = "RINGCAST_CONFIG")]
    pub config: Option<PathBuf>,
    /// Room joined by a client that offers no subprotocol.
    #[arg(long, env = "RINGCAST_DEFAULT_ROOM", default_value = "lobby")]
    pub default_room: String,
    /// Comma-separated list of allowed rooms (default: any token of up to 64 bytes).
    #[arg(long, env = "RINGCAST_ROOMS", value_delimiter = ',')]
    pub rooms: Vec<String>,
    /// Leave worker threads unpinned (for several processes sharing the same cores, such as a
    /// local cluster of nodes; with `taskset` or a cpuset each process pins within its own CPUs).
    #[arg(long, env = "RINGCAST_NO_PIN", default_value_t = false)]
    pub no_pin: bool,
    /// Also deliver each message back to its sender.
    #[arg(long, env = "RINGCAST_ECHO", default_value_t = false)]
    pub echo: bool,
    /// Subprotocol that selects the JSON pub/sub mode.
    #[arg(long, env = "RINGCAST_PUBSUB_PROTOCOL", default_value = "pubsub")]
    pub pubsub_protocol: String,
    /// Largest message accepted, in bytes (larger ones close with 1009).
    #[arg(long, env = "RINGCAST_MAX_MESSAGE_BYTES", default_value_t = 1 << 20)]
    pub max_message_bytes: u64,
    /// Bytes all unfinished messages together may hold (every connection, every worker);
    /// over it, the connection with the largest unfinished message is closed with 1008.
    #[arg(long, env = "RINGCAST_MAX_PENDING_BYTES", default_value_t = 256 << 20)]
    pub max_pending_bytes: usize,
    /// Unsent bytes queued for one client before it is closed with 1008.
    #[arg(long, env = "RINGCAST_MAX_BACKPRESSURE", default_value_t = 1 << 20)]
    pub max_backpressure: usize,
    /// Largest HTTP request head, in bytes (larger ones get 431).
    #[arg(long, env = "RINGCAST_MAX_HEADER_BYTES", default_value_t = 8192)]
    pub max_header_bytes: usize,
    /// Open connections allowed in total (more get 503).
    #[arg(long, env = "RINGCAST_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,
    /// Open connections allowed from one IP address (0 = no limit).
    #[arg(long, env = "RINGCAST_MAX_CONNECTIONS_PER_IP", default_value_t = 0)]
    pub max_connections_per_ip: usize,
    /// Distinct rooms allowed at once (joining a new room past it gets 503).
    #[arg(long, env = "RINGCAST_MAX_ROOMS", default_value_t = 100_000)]
    pub max_rooms: usize,
    /// Comma-separated allowed `Origin` values (default: any, with a warning).
    #[arg(long, env = "RINGCAST_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// HS256 secret that clients' tokens must be signed with (docs/tokens.md#what-is-checked; unset: no token needed).
    #[arg(
        long,
        env = "RINGCAST_AUTH_SECRET",
        hide_env_values = true,
        conflicts_with = "auth_secret_file"
    )]
    pub auth_secret: Option<Secret>,
    /// File holding the HS256 token secret (its trailing line break is dropped).
    #[arg(long, env = "RINGCAST_AUTH_SECRET_FILE")]
    pub auth_secret_file: Option<PathBuf>,
    /// The token verifier built from `--auth-secret` or `--auth-secret-file` (set by validation).
    #[arg(skip)]
    pub auth: Option<Arc<Verifier>>,
    /// Seconds a client has to complete its request head.
    #[arg(long, env = "RINGCAST_HANDSHAKE_TIMEOUT", default_value_t = 10.0)]
    pub handshake_timeout: f64,
    /// Seconds of silence before the server pings a client.
    #[arg(long, env = "RINGCAST_PING_INTERVAL", default_value_t = 30.0)]
    pub ping_interval: f64,
    /// Seconds of silence after which a client is dropped.
    #[arg(long, env = "RINGCAST_IDLE_TIMEOUT", default_value_t = 60.0)]
    pub idle_timeout: f64,
    /// Seconds to wait for clients' Close replies on SIGINT/SIGTERM.
    #[arg(long, env = "RINGCAST_DRAIN_TIMEOUT", default_value_t = 5.0)]
    pub drain_timeout: f64,
    /// Microseconds a busy event-loop turn may wait for more completions before it flushes
    /// (0 = flush at once). Larger batches mean fewer, fuller sends under load. A turn is busy
    /// with at least 4 receives, or any receive after a flush that issued at least 32 sends
    /// (fixed thresholds, see `limits.rs`).
    #[arg(long, env = "RINGCAST_GATHER_US", default_value_t = 100)]
    pub gather_us: u64,
    /// Provided receive buffers per worker.
    #[arg(long, env = "RINGCAST_RECV_BUFFERS", default_value_t = 512)]
    pub recv_buffers: u16,
    /// Size of one provided receive buffer, in bytes.
    #[arg(long, env = "RINGCAST_RECV_BUFFER_SIZE", default_value_t = 8192)]
    pub recv_buffer_size: u32,
    /// Pub/sub: subscriptions one connection may hold.
    #[arg(long, env = "RINGCAST_MAX_SUBSCRIPTIONS", default_value_t = 64)]
    pub max_subscriptions: usize,
    /// Pub/sub: messages kept per topic for `since` (0 = history off).
    #[arg(long, env = "RINGCAST_HISTORY_SIZE", default_value_t = 0)]
    pub history_size: usize,
    /// Pub/sub: seconds a history message is kept (0 = no age limit).
    #[arg(long, env = "RINGCAST_HISTORY_TTL", default_value_t = 0)]
    pub history_ttl: u64,
    /// Pub/sub: bytes of history over all topics (oldest topics evicted first).
    #[arg(long, env = "RINGCAST_HISTORY_MAX_BYTES", default_value_t = 256 << 20)]
    pub history_max_bytes: usize,
    /// Pub/sub: members per topic above which presence carries only a count.
    #[arg(long, env = "RINGCAST_PRESENCE_MAX", default_value_t = 1000)]
    pub presence_max: usize,
    /// This node's id, unique in a cluster (client ids and history epochs start with it;
    /// default: random).
    #[arg(long, env = "RINGCAST_NODE_ID")]
    pub node_id: Option<String>,
    /// Log format.
    #[arg(long, env = "RINGCAST_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// Redis URL(s) of the cluster bus (docs/cluster.md), repeatable or comma-separated; rooms are
    /// sharded over them by a hash of the name, so every node must list the same URLs in the
    /// same order. None: a single node, no bus thread.
    #[arg(
        long,
        env = "RINGCAST_CLUSTER",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub cluster: Vec<String>,
    /// Prefix of the cluster's Redis channels and keys (`<prefix>:room:<name>`).
    #[arg(long, env = "RINGCAST_CLUSTER_PREFIX", default_value = "ringcast")]
    pub cluster_prefix: String,
    /// Seconds a node's presence entries outlive it (each node refreshes them every third of
    /// this), so a killed node's members leave every presence list within this time.
    #[arg(long, env = "RINGCAST_CLUSTER_PRESENCE_TTL", default_value_t = 30.0)]
    pub cluster_presence_ttl: f64,
    /// Key of the server API for the application backend (docs/api.md): with it, `POST
    /// /api/<method>` is served on the listener, authenticated by `X-API-Key: <key>` or
    /// `Authorization: apikey <key>` (unset: no API; those paths are answered as any other).
    #[arg(
        long,
        env = "RINGCAST_API_KEY",
        hide_env_values = true,
        conflicts_with = "api_key_file"
    )]
    pub api_key: Option<Secret>,
    /// File holding the server API key (its trailing line break is dropped).
    #[arg(long, env = "RINGCAST_API_KEY_FILE")]
    pub api_key_file: Option<PathBuf>,
    /// Also serve the server API, and only it, on this address (an internal network), besides
    /// `/api/` on `--listen` (docs/api.md#listeners; needs `--api-key`).
    #[arg(long, env = "RINGCAST_API_LISTEN")]
    pub api_listen: Option<SocketAddr>,
    /// Largest server API request body, in bytes (larger ones get 413).
    #[arg(long, env = "RINGCAST_API_MAX_BODY", default_value_t = 1 << 20)]
    pub api_max_body: usize,
    /// The server API key from `--api-key` or `--api-key-file` (set by validation).
    #[arg(skip)]
    pub api: Option<Secret>,
    /// Pusher Channels dialect (docs/pusher.md): the id of one app (HTTP API paths
    /// `/apps/{id}/…`); with --pusher-app-key and --pusher-app-secret. More apps: the config
    /// file's `[[pusher_apps]]` tables.
    #[arg(long, env = "RINGCAST_PUSHER_APP_ID", requires_all = ["pusher_app_key", "pusher_app_secret"])]
    pub pusher_app_id: Option<String>,
    /// The public key of the --pusher-app-id app (the WebSocket path `/app/{key}`).
    #[arg(long, env = "RINGCAST_PUSHER_APP_KEY", requires = "pusher_app_id")]
    pub pusher_app_key: Option<String>,
    /// The secret of the --pusher-app-id app (every channel, user and API signature).
    #[arg(
        long,
        env = "RINGCAST_PUSHER_APP_SECRET",
        hide_env_values = true,
        requires = "pusher_app_id"
    )]
    pub pusher_app_secret: Option<Secret>,
    /// Comma-separated webhook URLs of the --pusher-app-id app, `http://` or `https://`
    /// (docs/pusher-webhooks.md).
    #[arg(
        long,
        env = "RINGCAST_PUSHER_WEBHOOK_URL",
        value_delimiter = ',',
        requires = "pusher_app_id"
    )]
    pub pusher_webhook_url: Vec<String>,
    /// PEM file of CA certificates trusted for `https://` webhook URLs besides the system's
    /// (a private CA); a receiver's certificate that neither vouches for is a failed attempt,
    /// retried (docs/pusher-webhooks.md#https).
    #[arg(long, env = "RINGCAST_PUSHER_WEBHOOK_CA")]
    pub pusher_webhook_ca: Option<PathBuf>,
    /// Path prefix a reverse proxy adds in front of the Pusher paths (`/pusher` serves
    /// `/pusher/app/{key}` and `/pusher/apps/{id}/…`).
    #[arg(long, env = "RINGCAST_PUSHER_PATH_PREFIX", default_value = "")]
    pub pusher_path_prefix: String,
    /// INSECURE, for trying the Pusher demo page (`{prefix}/pusher-demo`) only: serve
    /// `{prefix}/pusher-demo/auth`, which signs a `private-` or `presence-` subscription of
    /// the first app for whatever user name the browser claims. Never in production: an
    /// app's own server decides who may join (docs/pusher.md#demo-page).
    #[arg(long, env = "RINGCAST_PUSHER_DEMO_AUTH")]
    pub pusher_demo_auth: bool,
    /// Apps of the config file's `[[pusher_apps]]` tables (set by `load`).
    #[arg(skip)]
    pub pusher_apps_file: Vec<ringcast_pusher::app::App>,
    /// Every Pusher app, from the flags and the config file (set by validation; `None`: the
    /// dialect is off).
    #[arg(skip)]
    pub pusher: Option<Arc<ringcast_pusher::app::Apps>>,
    /// permessage-deflate (RFC 7692, docs/compression.md): `on` accepts a client's offer,
    /// `off` opens every connection without it.
    #[arg(long, env = "RINGCAST_COMPRESSION", value_enum, default_value = "on")]
    pub compression: Switch,
    /// Messages shorter than this many bytes are sent uncompressed even to clients that
    /// negotiated permessage-deflate (docs/compression.md#min-size).
    #[arg(long, env = "RINGCAST_COMPRESSION_MIN_SIZE", default_value_t = 256)]
    pub compression_min_size: usize,
    /// zlib level of outgoing compressed messages, 0 (stored) to 9 (smallest); each message is
    /// compressed once for all its receivers (docs/compression.md#level).
    #[arg(long, env = "RINGCAST_COMPRESSION_LEVEL", default_value_t = 1)]
    pub compression_level: u32,
}

impl Config {
    /// Reads flags and environment, then fills the remaining settings from `--config`.
    pub fn load() -> Result<Config, ConfigError> {
        let args: Vec<String> = std::env::args().collect();
        let first = Config::parse_from(&args);
        let Some(path) = first.config.clone() else {
            return first.validated();
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Invalid {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
        // File values become flags placed before the real ones, so real flags win; a setting
        // with its environment variable set is skipped, so the environment wins too.
        let mut merged = vec![args[0].clone()];
        let mut pusher_apps = Vec::new();
        for (key, value) in &table {
            if key == "pusher_apps" {
                // An array of tables (several apps) has no flag form.
                pusher_apps = crate::pusher::apps::from_toml(value).map_err(|message| {
                    ConfigError::Invalid {
                        path: path.clone(),
                        message,
                    }
                })?;
                continue;
            }
            let flag = key.replace('_', "-");
            let env = format!("RINGCAST_{}", flag.replace('-', "_").to_uppercase());
            if std::env::var_os(&env).is_some() {
                continue;
            }
            let value = match value {
                // Switches take no value: present when true, absent when false.
                toml::Value::Boolean(true) => {
                    merged.push(format!("--{flag}"));
                    continue;
                }
                toml::Value::Boolean(false) => continue,
                toml::Value::String(s) => s.clone(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            merged.push(format!("--{flag}={value}"));
        }
        merged.extend(args.into_iter().skip(1));
        let matches = Config::command()
            .try_get_matches_from(&merged)
            .map_err(|e| ConfigError::Invalid {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let mut config = Config::from_arg_matches(&matches).map_err(|e| ConfigError::Invalid {
            path,
            message: e.to_string(),
        })?;
        config.pusher_apps_file = pusher_apps;
        config.validated()
    }

    fn validated(mut self) -> Result<Config, ConfigError> {
        if self.workers == 0 {
            self.workers = std::thread::available_parallelism().map_or(1, usize::from);
        }
        if self.workers > 64 {
            return Err(ConfigError::Range("--workers must be at most 64".into()));
        }
        if !self.recv_buffers.is_power_of_two() {
            return Err(ConfigError::Range(
                "--recv-buffers must be a power of two".into(),
            ));
        }
        if self.recv_buffer_size < 1024 {
            return Err(ConfigError::Range(
                "--recv-buffer-size must be at least 1024".into(),
            ));
        }
        if self.max_message_bytes > crate::limits::MAX_MESSAGE_BYTES_CAP {
            return Err(ConfigError::Range(format!(
                "--max-message-bytes must be at most {}",
                crate::limits::MAX_MESSAGE_BYTES_CAP
            )));
        }
        for (name, v) in [
            ("handshake-timeout", self.handshake_timeout),
            ("ping-interval", self.ping_interval),
            ("idle-timeout", self.idle_timeout),
            ("drain-timeout", self.drain_timeout),
            ("cluster-presence-ttl", self.cluster_presence_ttl),
        ] {
            if !(v > 0.0 && v < 1e6) {
                return Err(ConfigError::Range(format!(
                    "--{name} must be a positive number of seconds"
                )));
            }
        }
        if let Some(v) = self.tls_reload_interval
            && !(v > 0.0 && v < 1e6)
        {
            return Err(ConfigError::Range(
                "--tls-reload-interval must be a positive number of seconds".into(),
            ));
        }
        if let Some(id) = &self.node_id
            && (id.is_empty() || id.len() > 255 || id.contains('\n'))
        {
            return Err(ConfigError::Range(
                "--node-id must be 1 to 255 bytes without a newline".into(),
            ));
        }
        if !self.cluster.is_empty() && self.cluster_presence_ttl < 0.03 {
            return Err(ConfigError::Range(
                "--cluster-presence-ttl must be at least 0.03 seconds".into(),
            ));
        }
        if self.compression_level > 9 {
            return Err(ConfigError::Range(
                "--compression-level must be 0 to 9".into(),
            ));
        }
        self.auth = self.verifier()?.map(Arc::new);
        self.api = self.api_key()?;
        if self.api_listen.is_some() && self.api.is_none() {
            return Err(ConfigError::Range(
                "--api-listen needs --api-key or --api-key-file".into(),
            ));
        }
        let flag_app = self.pusher_app_id.as_ref().map(|id| {
            let key = self.pusher_app_key.clone().unwrap_or_default();
            let secret = self.pusher_app_secret.clone().map(|s| s.0);
            let mut app = ringcast_pusher::app::App::new(id, key, secret.unwrap_or_default());
            app.webhooks.clone_from(&self.pusher_webhook_url);
            app
        });
        self.pusher = crate::pusher::apps::build(flag_app, &self.pusher_apps_file)
            .map_err(ConfigError::Range)?
            .map(Arc::new);
        if let Some(ca) = &self.pusher_webhook_ca {
            crate::webhooks::check_ca(ca).map_err(|e| ConfigError::Range(e.to_string()))?;
        }
        Ok(self)
    }

    /// The token verifier for `--auth-secret` or the contents of `--auth-secret-file`.
    fn verifier(&self) -> Result<Option<Verifier>, ConfigError> {
        let secret = match (&self.auth_secret, &self.auth_secret_file) {
            (Some(Secret(s)), _) => s.as_bytes().to_vec(),
            (None, Some(path)) => {
                let bytes = std::fs::read(path).map_err(|source| ConfigError::SecretFile {
                    path: path.clone(),
                    source,
                })?;
                secret_from_file(&bytes).to_vec()
            }
            (None, None) => return Ok(None),
        };
        if secret.is_empty() {
            return Err(ConfigError::Range(
                "the auth secret must not be empty".into(),
            ));
        }
        Ok(Some(Verifier::new(&secret)))
    }

    /// The server API key: `--api-key` or the contents of `--api-key-file` (docs/api.md#keys).
    fn api_key(&self) -> Result<Option<Secret>, ConfigError> {
        let key = match (&self.api_key, &self.api_key_file) {
            (Some(k), _) => k.0.clone(),
            (None, Some(path)) => {
                let bytes = std::fs::read(path).map_err(|e| {
                    ConfigError::Range(format!(
                        "cannot read --api-key-file {}: {e}",
                        path.display()
                    ))
                })?;
                String::from_utf8_lossy(secret_from_file(&bytes)).into_owned()
            }
            (None, None) => return Ok(None),
        };
        if key.is_empty() {
            return Err(ConfigError::Range("the API key must not be empty".into()));
        }
        Ok(Some(Secret(key)))
    }

    /// `--handshake-timeout` as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.handshake_timeout)
    }

    /// `--ping-interval` as a duration.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs_f64(self.ping_interval)
    }

    /// `--idle-timeout` as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.idle_timeout)
    }

    /// `--cluster-presence-ttl` as a duration.
    pub fn cluster_presence_ttl(&self) -> Duration {
        Duration::from_secs_f64(self.cluster_presence_ttl)
    }

    /// `--drain-timeout` as a duration.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.drain_timeout)
    }

    /// How often a worker checks its timeouts: a quarter of the shortest one, within 10-500 ms.
    pub fn tick_interval(&self) -> Duration {
        [
            self.handshake_timeout(),
            self.ping_interval(),
            self.idle_timeout(),
        ]
        .into_iter()
        .min()
        .unwrap_or(Duration::from_secs(1))
        .div_f64(4.0)
        .clamp(Duration::from_millis(10), Duration::from_millis(500))
    }

    /// Whether `name` may be a room (docs/room-mode.md#which-room).
    pub fn room_allowed(&self, name: &str) -> bool {
        if self.rooms.is_empty() {
            name.len() <= crate::limits::MAX_ROOM_NAME
        } else {
            self.rooms.iter().any(|r| r == name)
        }
    }
}
