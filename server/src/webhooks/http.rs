//! The HTTP client of webhooks: one `POST` per attempt over blocking `std` sockets, every
//! step within one deadline; the connection kept for the next POST when the receiver allows
//! ([`super::keep`]); for an `https://` URL the connection is TLS ([`super::tls`]).

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;

use super::answer::{self, Answer};
use super::failure::{PostError, is_timeout, remaining, stream_error};
use super::keep::Kept;
use super::tls::Stream;

/// Why a webhook URL is refused at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Neither `http://…` nor `https://…`.
    #[error("only http:// and https:// URLs are supported")]
    Scheme,
    /// No host, a bad port or user info.
    #[error("bad host or port")]
    Authority,
}

/// A parsed `http[s]://host[:port][/path][?query]` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://`: TLS with SNI and certificate checks for `host`.
    https: bool,
    host: String,
    port: u16,
    /// `host[:port]` as written, for the `Host` header.
    authority: String,
    /// Path and query, at least `/`.
    path: String,
}

impl Target {
    /// Parses `url`.
    ///
    /// # Errors
    /// [`UrlError`] for another scheme or a bad authority.
    pub fn parse(url: &str) -> Result<Target, UrlError> {
        let scheme = |s: &str| {
            url.get(..s.len())
                .filter(|p| p.eq_ignore_ascii_case(s))
                .map(|_| &url[s.len()..])
        };
        let (https, rest) = match (scheme("http://"), scheme("https://")) {
            (Some(rest), _) => (false, rest),
            (None, Some(rest)) => (true, rest),
            (None, None) => return Err(UrlError::Scheme),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        if authority.is_empty() || authority.contains('@') {
            return Err(UrlError::Authority);
        }
        let (host, port) = split_authority(authority, if https { 443 } else { 80 })?;
        if host.is_empty() || port == 0 {
            return Err(UrlError::Authority);
        }
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        Ok(Target {
            https,
            host: host.to_string(),
            port,
            authority: authority.to_string(),
            path,
        })
    }

    /// `host:port`, for log lines (the path may carry a token).
    #[must_use]
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Whether this is an `https://` URL.
    #[must_use]
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// POSTs `body` with `headers` (plus `Host`, `Content-Type: application/json`,
    /// `Content-Length`); the status when it is 2xx. The connection `kept` from the last POST
    /// carries it when still open (one the receiver closed just as it was written to is
    /// replaced by a new one, once), else a new one: TCP, and for an `https://` URL a TLS
    /// handshake with `tls` (given to every sender of an https URL). Connecting, the
    /// handshake, sending and reading the answer share one `timeout`. The connection is kept
    /// again when the answer allows it ([`answer::read`]).
    ///
    /// # Errors
    /// [`PostError`]: a non-2xx status, the timeout, a TLS failure, or a connection or
    /// protocol failure.
    pub fn post(
        &self,
        kept: &mut Kept,
        request: (&[u8], &[(&str, &str)]),
        timeout: Duration,
        tls: Option<&Arc<ClientConfig>>,
    ) -> Result<u16, PostError> {
        let started = Instant::now();
        let deadline = started + timeout;
        let head = self.head(request.0.len(), request.1);
        let exchange = |mut stream: Stream| -> Result<(Answer, Stream), PostError> {
            send(&mut stream, &head, request.0, deadline)?;
            let answer = answer::read(&mut stream, deadline)?;
            Ok((answer, stream))
        };
        let reused = kept.take(started).map(&exchange);
        let (answer, stream) = match reused {
            Some(Ok(done)) => done,
            Some(Err(e)) if !e.is_closed_connection() => return Err(e),
            // Nothing kept, or the receiver had closed it: a new connection.
            Some(Err(_)) | None => exchange(self.open(deadline, tls)?)?,
        };
        if answer.reusable {
            kept.put(stream, Instant::now());
        }
        if (200..300).contains(&answer.status) {
            Ok(answer.status)
        } else {
            Err(PostError::Status(answer.status))
        }
    }

    /// The request head for a body of `len` bytes.
    fn head(&self, len: usize, headers: &[(&str, &str)]) -> String {
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringcast-webhooks\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n",
            self.path, self.authority,
        );
        for (name, value) in headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        head
    }

    /// A new connection: TCP, then TLS for an `https://` URL.
    fn open(
        &self,
        deadline: Instant,
        tls: Option<&Arc<ClientConfig>>,
    ) -> Result<Stream, PostError> {
        let tcp = self.connect(deadline)?;
        if !self.https {
            return Ok(Stream::Plain(tcp));
        }
        let config = tls.ok_or_else(|| {
            PostError::Tls(rustls::Error::General("no TLS client configuration".into()))
        })?;
        // The handshake's reads and writes share the deadline.
        let left = Some(remaining(deadline)?);
        tcp.set_read_timeout(left).map_err(PostError::Io)?;
        tcp.set_write_timeout(left).map_err(PostError::Io)?;
        Stream::tls(config, &self.host, tcp)
    }

    fn connect(&self, deadline: Instant) -> Result<TcpStream, PostError> {
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(PostError::Connect)?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
                Ok(s) => {
                    // The head and the body are two writes (two TLS records over https): with
                    // Nagle's algorithm the second waits for the receiver's delayed ACK of the
                    // first, 40 ms per POST on a kept connection (measured on loopback).
                    s.set_nodelay(true).map_err(PostError::Connect)?;
                    return Ok(s);
                }
                Err(e) if is_timeout(&e) => return Err(PostError::Timeout),
                Err(e) => last = Some(e),
            }
        }
        Err(PostError::Connect(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
        })))
    }
}

/// Writes the request's head and body, within the deadline.
fn send(stream: &mut Stream, head: &str, body: &[u8], deadline: Instant) -> Result<(), PostError> {
    for part in [head.as_bytes(), body] {
        stream
            .tcp()
            .set_write_timeout(Some(remaining(deadline)?))
            .map_err(PostError::Io)?;
        stream.write_all(part).map_err(stream_error)?;
    }
    // TLS records still buffered go out before the answer is awaited.
    stream.flush().map_err(stream_error)
}

/// `host` (brackets of an IPv6 literal removed) and port (`default` when absent) of
/// `authority`.
fn split_authority(authority: &str, default: u16) -> Result<(&str, u16), UrlError> {
    let port = |p: &str| p.parse::<u16>().map_err(|_| UrlError::Authority);
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or(UrlError::Authority)?;
        return match after {
            "" => Ok((host, default)),
            _ => Ok((
                host,
                port(after.strip_prefix(':').ok_or(UrlError::Authority)?)?,
            )),
        };
    }
    match authority.split_once(':') {
        Some((host, p)) => Ok((host, port(p)?)),
        None => Ok((authority, default)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(host: &str, port: u16, authority: &str, path: &str) -> Target {
        Target {
            https: false,
            host: host.into(),
            port,
            authority: authority.into(),
            path: path.into(),
        }
    }

    #[test]
    fn urls_parse_with_their_defaults() {
        assert_eq!(
            Target::parse("http://example.com"),
            Ok(t("example.com", 80, "example.com", "/"))
        );
        assert_eq!(
            Target::parse("HTTP://127.0.0.1:8080/hooks/pusher?token=x#frag"),
            Ok(t(
                "127.0.0.1",
                8080,
                "127.0.0.1:8080",
                "/hooks/pusher?token=x"
            ))
        );
        assert_eq!(Target::parse("http://h?x=1"), Ok(t("h", 80, "h", "/?x=1")));
        assert_eq!(
            Target::parse("http://[::1]:9000/w"),
            Ok(t("::1", 9000, "[::1]:9000", "/w"))
        );
        assert_eq!(
            Target::parse("http://[::1]/w"),
            Ok(t("::1", 80, "[::1]", "/w"))
        );
    }

    #[test]
    fn https_urls_default_to_port_443() {
        let tls = |host, port, authority, path| Target {
            https: true,
            ..t(host, port, authority, path)
        };
        assert_eq!(
            Target::parse("https://hooks.example/pusher"),
            Ok(tls("hooks.example", 443, "hooks.example", "/pusher"))
        );
        assert_eq!(
            Target::parse("HTTPS://[::1]:8443"),
            Ok(tls("::1", 8443, "[::1]:8443", "/"))
        );
        assert!(Target::parse("https://h/").is_ok_and(|t| t.is_https()));
        assert!(Target::parse("http://h/").is_ok_and(|t| !t.is_https()));
    }

    #[test]
    fn other_schemes_and_bad_authorities_are_refused() {
        assert_eq!(Target::parse("ftp://x"), Err(UrlError::Scheme));
        assert_eq!(Target::parse("http"), Err(UrlError::Scheme));
        assert_eq!(Target::parse("httpx://h/"), Err(UrlError::Scheme));
        for bad in [
            "http://",
            "https://",
            "https://h:0/",
            "http:///path",
            "http://h:0/",
            "http://h:99999/",
            "http://h:x/",
            "http://user:pw@h/",
            "http://[::1/",
        ] {
            assert_eq!(Target::parse(bad), Err(UrlError::Authority), "{bad}");
        }
    }
}
