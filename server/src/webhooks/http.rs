//! The HTTP client of webhooks: one `POST` per attempt over a fresh `std` TCP connection
//! (`Connection: close`), every step within one deadline; for an `https://` URL the
//! connection is TLS ([`super::tls`]).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::ClientConfig;

use super::failure::{PostError, is_timeout, stream_error};
use super::tls::Stream;

/// Largest response head read before the status is known.
const MAX_HEAD: usize = 16 * 1024;

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
    /// `Content-Length`, `Connection: close`); the status when it is 2xx. Connecting, sending
    /// and reading the status line share one `timeout`; so does the TLS handshake of an
    /// `https://` URL, made with `tls` (given to every sender of an https URL).
    ///
    /// # Errors
    /// [`PostError`]: a non-2xx status, the timeout, a TLS failure, or a connection or
    /// protocol failure.
    pub fn post(
        &self,
        body: &[u8],
        headers: &[(&str, &str)],
        timeout: Duration,
        tls: Option<&Arc<ClientConfig>>,
    ) -> Result<u16, PostError> {
        let deadline = Instant::now() + timeout;
        let tcp = self.connect(deadline)?;
        let mut stream = if self.https {
            let config = tls.ok_or_else(|| {
                PostError::Tls(rustls::Error::General("no TLS client configuration".into()))
            })?;
            // The handshake's reads and writes share the deadline.
            let left = Some(remaining(deadline)?);
            tcp.set_read_timeout(left).map_err(PostError::Io)?;
            tcp.set_write_timeout(left).map_err(PostError::Io)?;
            Stream::tls(config, &self.host, tcp)?
        } else {
            Stream::Plain(tcp)
        };
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ringcast-webhooks\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.path,
            self.authority,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        stream
            .tcp()
            .set_write_timeout(Some(remaining(deadline)?))
            .map_err(PostError::Io)?;
        stream.write_all(head.as_bytes()).map_err(stream_error)?;
        stream
            .tcp()
            .set_write_timeout(Some(remaining(deadline)?))
            .map_err(PostError::Io)?;
        stream.write_all(body).map_err(stream_error)?;
        // TLS records still buffered go out before the answer is awaited.
        stream.flush().map_err(stream_error)?;
        let status = read_status(&mut stream, deadline)?;
        if (200..300).contains(&status) {
            Ok(status)
        } else {
            Err(PostError::Status(status))
        }
    }

    fn connect(&self, deadline: Instant) -> Result<TcpStream, PostError> {
        let addrs = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(PostError::Connect)?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, remaining(deadline)?) {
                Ok(s) => return Ok(s),
                Err(e) if is_timeout(&e) => return Err(PostError::Timeout),
                Err(e) => last = Some(e),
            }
        }
        Err(PostError::Connect(last.unwrap_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
        })))
    }
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

/// Reads until the response head is complete; its status code.
fn read_status(stream: &mut Stream, deadline: Instant) -> Result<u16, PostError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        stream
            .tcp()
            .set_read_timeout(Some(remaining(deadline)?))
            .map_err(PostError::Io)?;
        let n = stream.read(&mut chunk).map_err(stream_error)?;
        if n == 0 {
            return Err(PostError::BadAnswer);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut answer = httparse::Response::new(&mut headers);
        match answer.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                return answer.code.ok_or(PostError::BadAnswer);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            // Too many headers is still an answer: the status line parsed.
            Err(httparse::Error::TooManyHeaders) => {
                return answer.code.ok_or(PostError::BadAnswer);
            }
            _ => return Err(PostError::BadAnswer),
        }
    }
}

fn remaining(deadline: Instant) -> Result<Duration, PostError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(PostError::Timeout)
    } else {
        Ok(left)
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
