//! Secrets out of logs and errors: a Redis URL is shown with its password replaced by `***`.

use std::fmt;

/// Displays a Redis URL with its password hidden: `redis://user:***@host:port/db` (user kept),
/// and the `pass` / `password` query parameters of a `redis+unix://` URL as `***` too.
/// Anything that does not look like a URL is shown as is (it holds no `user:password@` part).
#[derive(Clone, Copy)]
pub struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0;
        let (scheme, rest) = match url.find("://") {
            Some(i) => url.split_at(i + 3),
            None => ("", url),
        };
        f.write_str(scheme)?;
        // The authority ends at the first '/', '?' or '#'; its userinfo at its last '@'.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        match authority.rfind('@') {
            Some(at) => {
                let (userinfo, host) = authority.split_at(at);
                match userinfo.split_once(':') {
                    Some((user, _)) => write!(f, "{user}:***{host}")?,
                    None => write!(f, "{userinfo}{host}")?,
                }
            }
            None => f.write_str(authority)?,
        }
        let Some((path, query)) = tail.split_once('?') else {
            return f.write_str(tail);
        };
        write!(f, "{path}?")?;
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some((k, _)) if k == "pass" || k == "password" => write!(f, "{k}=***")?,
                _ => f.write_str(pair)?,
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// The redacted form of `url` as a string.
pub fn redact_url(url: &str) -> String {
    Redacted(url).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_users_and_hosts_kept() {
        let cases = [
            (
                "redis://:s3cr3t@10.0.0.1:6379/2",
                "redis://:***@10.0.0.1:6379/2",
            ),
            ("redis://ana:s3cr3t@h:1", "redis://ana:***@h:1"),
            ("rediss://ana:p@ss:w@rd@h:1/0", "rediss://ana:***@h:1/0"),
            ("redis://ana@h:1", "redis://ana@h:1"),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
            (
                "redis://h:1/0?protocol=resp3",
                "redis://h:1/0?protocol=resp3",
            ),
            (
                "redis+unix:///tmp/r.sock?db=1&pass=s3cr3t&x=y",
                "redis+unix:///tmp/r.sock?db=1&pass=***&x=y",
            ),
            (
                "redis+unix:///tmp/r.sock?password=s3",
                "redis+unix:///tmp/r.sock?password=***",
            ),
            ("not a url", "not a url"),
            ("", ""),
        ];
        for (url, shown) in cases {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        assert_eq!(
            format!("{:?}", Redacted("redis://:x@h")),
            "\"redis://:***@h\""
        );
    }
}
