//! The worker's submission queue: the one place that builds SQEs and pushes them into the ring.
//!
//! Every entry is an [`Sqe`], whose constructor carries the promise that the memory it names
//! outlives its completion. The entries built here name no memory of ours except the tick's
//! timespec (boxed here, never replaced, dropped after the ring) and the provided-buffer group
//! (owned by the worker's `BufRing`, dropped after the ring); fds stay open until the
//! connection's lifecycle allows CLOSE. The WRITEV entry is built by the `OutQueue` that owns
//! the iovecs and bytes, and a TLS connection's SEND by the `tls::cipher::CipherBuf` that owns
//! its records, where their safety arguments are written.

use std::os::fd::RawFd;

use io_uring::{IoUring, opcode, types};

use crate::conn::lifecycle::Shut;
use crate::conn::outq::OutQueue;
use crate::limits::GATHER_WANT;
use crate::ring::{Op, Sqe};
use crate::tls::TlsConn;

/// SQEs waiting for the next enter, and the memory some of them name.
pub struct Sq {
    pending: Vec<Sqe>,
    tick: Box<types::Timespec>,
}

impl Sq {
    /// An empty queue whose timer fires every `tick`.
    pub fn new(tick: std::time::Duration) -> Sq {
        Sq {
            pending: Vec::with_capacity(256),
            tick: Box::new(types::Timespec::from(tick)),
        }
    }

    fn push(&mut self, entry: io_uring::squeue::Entry) {
        // Fds named by connection operations are closed only through `Sq::close`, which the
        // lifecycle allows only when nothing else is in flight on them.
        // SAFETY: only entries that name no memory, or memory this type or the worker's
        // `BufRing` owns for the ring's whole life, reach here (see the module comment).
        self.pending.push(unsafe { Sqe::new(entry) });
    }

    /// Multishot accept on `listener` (the main one).
    pub fn accept(&mut self, listener: RawFd) {
        self.accept_as(listener, Op::Accept);
    }

    /// Multishot accept on the plain listener beside a TLS one (`--plain-listen`).
    pub fn accept_plain(&mut self, listener: RawFd) {
        self.accept_as(listener, Op::AcceptPlain);
    }

    /// Multishot accept on the server API listener `listener` (`--api-listen`).
    pub fn accept_api(&mut self, listener: RawFd) {
        self.accept_as(listener, Op::ApiAccept);
    }

    /// Multishot accept on `listener`, its completions tagged `op`.
    fn accept_as(&mut self, listener: RawFd, op: Op) {
        self.push(
            opcode::AcceptMulti::new(types::Fd(listener))
                .flags(libc::SOCK_CLOEXEC)
                .build()
                .user_data(op.encode()),
        );
    }

    /// Cancels the multishot accept on the server API listener.
    pub fn cancel_accept_api(&mut self) {
        self.cancel(Op::ApiAccept);
    }

    /// Cancels the multishot accepts of the main and the plain listener.
    pub fn cancel_accept(&mut self) {
        self.cancel(Op::Accept);
        self.cancel(Op::AcceptPlain);
    }

    fn cancel(&mut self, op: Op) {
        self.push(
            opcode::AsyncCancel::new(op.encode())
                .build()
                .user_data(Op::Ignore.encode()),
        );
    }

    /// The periodic timer.
    pub fn tick(&mut self) {
        let ts: *const types::Timespec = &*self.tick;
        self.push(
            opcode::Timeout::new(ts)
                .build()
                .user_data(Op::Tick.encode()),
        );
    }

    /// Multishot receive on connection (`slot`, `generation`) with buffers from `group`.
    pub fn recv(&mut self, fd: RawFd, slot: usize, generation: u32, group: u16) {
        self.push(
            opcode::RecvMulti::new(types::Fd(fd), group)
                .build()
                .user_data(Op::Recv(slot as u32, generation).encode()),
        );
    }

    /// A WRITEV of what `queue` holds; returns whether a send was started.
    pub fn send(&mut self, queue: &mut OutQueue, fd: RawFd, slot: usize, generation: u32) -> bool {
        match queue.start_send(fd, Op::Send(slot as u32, generation).encode()) {
            Some(sqe) => {
                self.pending.push(sqe);
                true
            }
            None => false,
        }
    }

    /// A SEND of a TLS connection's records (what `queue` holds, encrypted); returns whether
    /// a send was started.
    pub fn send_tls(
        &mut self,
        tls: &mut TlsConn,
        queue: &mut OutQueue,
        fd: RawFd,
        slot: usize,
        generation: u32,
    ) -> bool {
        match tls.start_send(queue, fd, Op::Send(slot as u32, generation).encode()) {
            Some(sqe) => {
                self.pending.push(sqe);
                true
            }
            None => false,
        }
    }

    /// Shutdown of a connection's socket.
    pub fn shutdown(&mut self, fd: RawFd, how: Shut, slot: usize, generation: u32) {
        self.push(
            opcode::Shutdown::new(types::Fd(fd), how.how())
                .build()
                .user_data(Op::Shutdown(slot as u32, generation).encode()),
        );
    }

    /// Close of a connection's fd (only when its lifecycle says `may_close_fd`).
    pub fn close(&mut self, fd: RawFd, slot: usize, generation: u32) {
        self.push(
            opcode::Close::new(types::Fd(fd))
                .build()
                .user_data(Op::Close(slot as u32, generation).encode()),
        );
    }

    /// Wakes the worker whose ring is `ring_fd` (IORING_OP_MSG_RING).
    pub fn wake(&mut self, ring_fd: RawFd) {
        self.push(wake_entry(ring_fd));
    }

    /// Submits every pending entry and waits for at least one completion.
    pub fn submit_and_wait(&mut self, ring: &mut IoUring) -> std::io::Result<()> {
        self.submit_into(ring)?;
        match ring.submit_and_wait(1) {
            Err(e) if !transient(&e) => Err(e),
            _ => Ok(()),
        }
    }

    /// Submits every pending entry and waits up to `timeout` for `GATHER_WANT` completions (a
    /// busy turn letting more receives land before it flushes).
    pub fn submit_and_gather(
        &mut self,
        ring: &mut IoUring,
        timeout: &types::Timespec,
    ) -> std::io::Result<()> {
        self.submit_into(ring)?;
        let args = types::SubmitArgs::new().timespec(timeout);
        match ring.submitter().submit_with_args(GATHER_WANT, &args) {
            Err(e) if !(transient(&e) || e.raw_os_error() == Some(libc::ETIME)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Pushes every pending entry into `ring`, submitting when the ring is full.
    ///
    /// A transient EAGAIN/EBUSY/EINTR from the kernel (short of memory, completion queue
    /// overflowing) is not an error: the entries not pushed yet stay pending for the next turn,
    /// after this one has reaped completions (issue 14 row 12).
    pub fn submit_into(&mut self, ring: &mut IoUring) -> std::io::Result<()> {
        let mut pushed = 0;
        'all: for sqe in &self.pending {
            // SAFETY: every entry is an `Sqe`, whose constructor guaranteed that the memory and
            // fds it names stay valid until its completion.
            while unsafe { ring.submission().push(sqe.entry()) }.is_err() {
                match ring.submit() {
                    Ok(_) => {}
                    Err(e) if transient(&e) => break 'all,
                    Err(e) => return Err(e),
                }
            }
            pushed += 1;
        }
        self.pending.drain(..pushed);
        Ok(())
    }
}

/// An error from entering the ring that the next turn may not see again: interrupted, short of
/// memory for the moment (EAGAIN), or the completion queue is full (EBUSY, cleared by reaping).
fn transient(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
    )
}

fn wake_entry(ring_fd: RawFd) -> io_uring::squeue::Entry {
    opcode::MsgRingData::new(types::Fd(ring_fd), 0, Op::Wake.encode(), None)
        .build()
        .user_data(Op::Ignore.encode())
}

/// A small ring of its own for threads that are not workers (the main thread's drain, a cluster
/// bus reader) to wake workers after sending them a `fanout::Remote`.
pub struct Waker {
    ring: IoUring,
}

impl Waker {
    /// A ring for wake-ups.
    pub fn new() -> std::io::Result<Waker> {
        Ok(Waker {
            ring: IoUring::new(8)?,
        })
    }

    /// Wakes the worker whose ring is `ring_fd`.
    pub fn wake(&mut self, ring_fd: RawFd) -> std::io::Result<()> {
        let entry = wake_entry(ring_fd);
        // SAFETY: a MSG_RING entry names no memory, only the target ring's fd, which lives as
        // long as its worker (a finished worker's fd may fail the wake, harmlessly).
        while unsafe { self.ring.submission().push(&entry) }.is_err() {
            self.submit()?;
        }
        self.submit()
    }

    /// Submits, retrying what is transient, and drops this ring's completions.
    fn submit(&mut self) -> std::io::Result<()> {
        for _ in 0..100 {
            let done = self.ring.submit();
            // Each MSG_RING also posts its result here; nobody needs it.
            self.ring.completion().for_each(drop);
            match done {
                Ok(_) => return Ok(()),
                Err(e) if transient(&e) => std::thread::yield_now(),
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::from_raw_os_error(libc::EBUSY))
    }
}
