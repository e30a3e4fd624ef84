//! A tiny blocking RESP2 client, so server tests can look at Redis the way an operator would
//! (`PUBSUB CHANNELS`, `INFO commandstats`, `HGETALL`, `PUBLISH`) without a Redis crate.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use super::READ_TIMEOUT;

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR …`
    Error(String),
    /// `:42`
    Int(i64),
    /// `$…` (`None`: the null bulk string)
    Bulk(Option<Vec<u8>>),
    /// `*…`
    Array(Vec<Reply>),
}

impl Reply {
    /// The reply as text (a bulk or simple string, or an integer), panicking on anything else.
    pub fn text(&self) -> String {
        match self {
            Reply::Simple(s) => s.clone(),
            Reply::Int(i) => i.to_string(),
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("expected a string reply, got {other:?}"),
        }
    }

    /// The reply as a list of texts (an array of strings or integers), panicking on anything else.
    pub fn texts(&self) -> Vec<String> {
        match self {
            Reply::Array(items) => items.iter().map(Reply::text).collect(),
            other => panic!("expected an array reply, got {other:?}"),
        }
    }

    /// The reply as an integer, panicking on anything else.
    pub fn int(&self) -> i64 {
        match self {
            Reply::Int(i) => *i,
            other => panic!("expected an integer reply, got {other:?}"),
        }
    }
}

/// A connection to one redis-server.
pub struct Resp {
    stream: BufReader<TcpStream>,
}

impl Resp {
    /// Connects to the redis-server on loopback `port`.
    pub fn connect(port: u16) -> Resp {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to redis-server");
        s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        Resp {
            stream: BufReader::new(s),
        }
    }

    /// Sends one command and reads its reply.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Reply {
        self.send(args);
        self.read()
    }

    /// Sends one command of text arguments and reads its reply.
    pub fn cmd_str(&mut self, args: &[&str]) -> Reply {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.cmd(&args)
    }

    /// Sends one command without reading a reply (for `SUBSCRIBE`, whose replies are pushes).
    pub fn send(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        self.stream
            .get_mut()
            .write_all(&out)
            .expect("write to redis");
    }

    /// Reads one reply (or one pushed message of a subscribed connection).
    pub fn read(&mut self) -> Reply {
        let mut line = Vec::new();
        self.stream
            .read_until(b'\n', &mut line)
            .expect("read from redis");
        assert!(line.ends_with(b"\r\n"), "redis closed: {line:?}");
        let body = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        let n = || body.parse::<i64>().expect("RESP length");
        match line[0] {
            b'+' => Reply::Simple(body.clone()),
            b'-' => Reply::Error(body.clone()),
            b':' => Reply::Int(n()),
            b'$' if n() < 0 => Reply::Bulk(None),
            b'$' => {
                let mut buf = vec![0; n() as usize + 2];
                std::io::Read::read_exact(&mut self.stream, &mut buf).expect("bulk body");
                buf.truncate(buf.len() - 2);
                Reply::Bulk(Some(buf))
            }
            b'*' if n() < 0 => Reply::Array(Vec::new()),
            b'*' => Reply::Array((0..n()).map(|_| self.read()).collect()),
            other => panic!("not RESP: {:?}", other as char),
        }
    }

    /// The sorted channels matching `pattern` (`PUBSUB CHANNELS`).
    pub fn channels(&mut self, pattern: &str) -> Vec<String> {
        let mut c = self.cmd_str(&["PUBSUB", "CHANNELS", pattern]).texts();
        c.sort();
        c
    }

    /// The sorted rooms with a subscribed channel `<prefix>:room:<name>` (`PUBSUB CHANNELS`).
    pub fn rooms(&mut self, prefix: &str) -> Vec<String> {
        let head = format!("{prefix}:room:");
        let mut rooms: Vec<String> = (self.channels(&format!("{head}*")).iter())
            .filter_map(|c| c.strip_prefix(&head).map(String::from))
            .collect();
        rooms.sort();
        rooms
    }

    /// How many connections subscribe to `channel` (`PUBSUB NUMSUB`).
    pub fn numsub(&mut self, channel: &str) -> i64 {
        match self.cmd_str(&["PUBSUB", "NUMSUB", channel]) {
            Reply::Array(r) if r.len() == 2 => r[1].int(),
            other => panic!("NUMSUB reply {other:?}"),
        }
    }

    /// How many `PUBLISH` commands this server has executed (`INFO commandstats`).
    pub fn publish_calls(&mut self) -> u64 {
        self.calls("publish")
    }

    /// How many `command` commands (lower case) this server has executed.
    pub fn calls(&mut self, command: &str) -> u64 {
        let info = self.cmd_str(&["INFO", "commandstats"]).text();
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|r| r.split(',').next())
            .map_or(0, |v| v.parse().expect("calls"))
    }
}
