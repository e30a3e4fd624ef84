//! The redis-server of a cluster run: started by the runner on a free loopback port with
//! `--save ''` (nothing written to disk), stopped by its PID.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server child process; killed on drop if [`Redis::stop`] was not called.
pub struct Redis {
    child: Option<Child>,
    port: u16,
}

/// Whether a `redis-server` executable is on `PATH`.
pub fn on_path() -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| d.join("redis-server").is_file())
    })
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

/// Whether the server on `port` answers `PING` with `+PONG`.
fn answers_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Redis {
    /// Starts redis-server on a free loopback port (stdout and stderr to `log`) and waits up to
    /// 10 s until it answers `PING`.
    pub fn start(log: &Path) -> Result<Self, String> {
        let port = free_port()?;
        let out = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        let mut redis = Self {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers_ping(port) {
            if let Some(st) = redis
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!("redis-server exited: {st}; see {}", log.display()));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server did not answer PING within 10 s; see {}",
                    log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM to its PID and waits up to `patience` (then SIGKILL).
    pub fn stop(mut self, patience: Duration) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        // SAFETY: kill only sends a signal to the child we spawned (and have not reaped).
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let t0 = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if t0.elapsed() > patience => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err("redis-server did not exit on SIGTERM (killed)".into());
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("redis-server wait: {e}")),
            }
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_answers_and_stops_by_pid() {
        if !on_path() {
            eprintln!("redis-server not on PATH: skipped (.ci/install.d/20-redis.sh)");
            return;
        }
        let log = std::env::temp_dir().join(format!("e2e-redis-test-{}.log", std::process::id()));
        let redis = Redis::start(&log).expect("redis-server starts");
        assert!(answers_ping(redis.port));
        assert!(redis.url().starts_with("redis://127.0.0.1:"));
        let pid = redis.pid().expect("pid") as libc::pid_t;
        redis
            .stop(Duration::from_secs(10))
            .expect("stops on SIGTERM");
        // SAFETY: signal 0 only checks whether the (reaped) process id still exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "redis-server {pid} still running");
        let _ = std::fs::remove_file(log);
    }
}
