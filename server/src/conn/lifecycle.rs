//! The life of a connection's socket: which operations are in flight (receive, send, shutdown,
//! close) and how far teardown has got, changed only by [`Lifecycle::on`].
//!
//! The two questions the worker must get right, "may the fd be closed?" and "may the slot be
//! freed?", are answered here and nowhere else ([`Lifecycle::may_close_fd`],
//! [`Lifecycle::may_free_slot`]): closing an fd the kernel still reads through, or freeing a slot
//! a completion may still name, is exactly the bug this type exists to prevent.

/// How far a connection is from being gone. Ordered: a connection only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Handshake or WebSocket traffic flows.
    Live,
    /// The last bytes (an HTTP answer or a Close frame) are queued; once the queue has drained
    /// the socket is half-closed (SHUT_WR).
    Flushing,
    /// SHUT_WR submitted: the server reads (and drops) until the client's FIN or the linger time.
    HalfClosed,
    /// Torn down: unsent bytes dropped, SHUT_RDWR submitted so any armed receive or pending send
    /// completes; the fd is closed once nothing is in flight.
    Aborted,
    /// CLOSE submitted.
    Closing,
    /// CLOSE completed.
    Closed,
}

/// Which half-close a shutdown asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shut {
    /// SHUT_WR: everything queued was sent, tell the client (it still may send its Close/FIN).
    Write,
    /// SHUT_RDWR: the connection is dead; completes whatever is in flight.
    Both,
}

impl Shut {
    /// The `how` argument of shutdown(2).
    pub fn how(self) -> i32 {
        match self {
            Shut::Write => libc::SHUT_WR,
            Shut::Both => libc::SHUT_RDWR,
        }
    }
}

/// Something that happened to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A multishot receive was submitted.
    RecvArmed,
    /// The receive's last completion arrived (no `IORING_CQE_F_MORE`).
    RecvEnded,
    /// A WRITEV was submitted.
    SendStarted,
    /// The WRITEV completed; `more` says whether bytes are still queued.
    SendDone {
        /// Bytes remain queued after this send.
        more: bool,
    },
    /// The WRITEV failed (the peer is gone).
    SendFailed,
    /// The connection's last bytes are queued (a Close frame): once sent, half-close and wait
    /// for the client's FIN, up to the linger time.
    Finish,
    /// The connection's last bytes are queued and no reply is expected (an HTTP answer): close
    /// as soon as they are written (issue 14 row 9).
    FinishNow,
    /// The client half-closed (FIN): it sends nothing more; what is queued is still sent, then
    /// the connection closes (issue 14 row 5). The worker sends `Finish` first.
    PeerFin,
    /// Tear the connection down (EOF, error, timeout, linger over).
    Abort,
    /// A SHUTDOWN completed.
    ShutdownDone,
    /// The CLOSE completed.
    CloseDone,
}

/// What the worker must do after an event: submit these, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Todo {
    /// Bytes remain queued: mark the connection for this turn's flush.
    pub send_more: bool,
    /// Submit a SHUTDOWN.
    pub shutdown: Option<Shut>,
    /// Submit the CLOSE of the fd.
    pub close_fd: bool,
    /// Free the slab slot (nothing can name it any more).
    pub free_slot: bool,
}

/// A connection's lifecycle: its stage and the operations in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    stage: Stage,
    recv: bool,
    send: bool,
    shutdowns: u8,
    /// Close once the half-close completes instead of waiting for the client's FIN (it came
    /// already, or no reply is expected).
    no_linger: bool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::new()
    }
}

impl Lifecycle {
    /// A freshly accepted connection: live, nothing in flight.
    pub const fn new() -> Lifecycle {
        Lifecycle {
            stage: Stage::Live,
            recv: false,
            send: false,
            shutdowns: 0,
            no_linger: false,
        }
    }

    /// The current stage.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// Torn down (or further): nothing is queued, sent or received any more.
    pub fn is_dead(&self) -> bool {
        self.stage >= Stage::Aborted
    }

    /// Whether a receive may be (re-)armed.
    pub fn may_recv(&self) -> bool {
        !self.recv && !self.is_dead()
    }

    /// Whether a send may be submitted.
    pub fn may_send(&self) -> bool {
        !self.send && !self.is_dead()
    }

    /// The fd may be closed: the connection is dead and nothing in flight can still use it.
    pub fn may_close_fd(&self) -> bool {
        self.stage == Stage::Aborted && self.idle()
    }

    /// The slot may be freed: the fd is closed and no completion can name the slot any more.
    pub fn may_free_slot(&self) -> bool {
        self.stage == Stage::Closed && self.idle()
    }

    fn idle(&self) -> bool {
        !self.recv && !self.send && self.shutdowns == 0
    }

    /// Applies `event` and says what to submit. Pure: the same state and event always give the
    /// same result, so every completion ordering can be unit-tested.
    #[must_use]
    pub fn step(mut self, event: Event) -> (Lifecycle, Todo) {
        let mut todo = Todo::default();
        match event {
            Event::RecvArmed => {
                debug_assert!(
                    self.may_recv(),
                    "receive armed twice or after abort: {self:?}"
                );
                self.recv = true;
            }
            Event::RecvEnded => {
                debug_assert!(self.recv, "receive ended without one armed: {self:?}");
                self.recv = false;
            }
            Event::SendStarted => {
                debug_assert!(
                    self.may_send(),
                    "send while one is in flight or dead: {self:?}"
                );
                self.send = true;
            }
            Event::SendDone { more } => {
                debug_assert!(self.send, "send completed without one in flight: {self:?}");
                self.send = false;
                if more {
                    todo.send_more = !self.is_dead();
                } else if self.stage == Stage::Flushing {
                    self.stage = Stage::HalfClosed;
                    self.shutdowns += 1;
                    todo.shutdown = Some(Shut::Write);
                }
            }
            Event::SendFailed => {
                debug_assert!(self.send, "send failed without one in flight: {self:?}");
                self.send = false;
                self.abort(&mut todo);
            }
            Event::FinishNow | Event::PeerFin => {
                self.no_linger = true;
                if self.stage == Stage::Live {
                    self.stage = Stage::Flushing;
                } else if self.stage == Stage::HalfClosed && self.shutdowns == 0 {
                    self.abort(&mut todo);
                }
            }
            Event::Finish => {
                debug_assert!(
                    self.stage <= Stage::Flushing || self.is_dead(),
                    "final bytes queued after the half-close: {self:?}"
                );
                if self.stage == Stage::Live {
                    self.stage = Stage::Flushing;
                }
            }
            Event::Abort => self.abort(&mut todo),
            Event::ShutdownDone => {
                debug_assert!(self.shutdowns > 0, "shutdown completed, none in flight");
                self.shutdowns = self.shutdowns.saturating_sub(1);
                if self.stage == Stage::HalfClosed && self.no_linger {
                    self.abort(&mut todo);
                }
            }
            Event::CloseDone => {
                debug_assert_eq!(
                    self.stage,
                    Stage::Closing,
                    "close completed, none submitted"
                );
                self.stage = Stage::Closed;
            }
        }
        if self.may_close_fd() {
            self.stage = Stage::Closing;
            todo.close_fd = true;
        }
        todo.free_slot = self.may_free_slot();
        (self, todo)
    }

    /// Applies `event` in place (see [`Lifecycle::step`]).
    #[must_use]
    pub fn on(&mut self, event: Event) -> Todo {
        let (next, todo) = self.step(event);
        *self = next;
        todo
    }

    fn abort(&mut self, todo: &mut Todo) {
        if self.is_dead() {
            return;
        }
        self.stage = Stage::Aborted;
        self.shutdowns += 1;
        todo.shutdown = Some(Shut::Both);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `events` from a fresh connection; returns the final state and every todo.
    fn run(events: &[Event]) -> (Lifecycle, Vec<Todo>) {
        let mut life = Lifecycle::new();
        let todos = events.iter().map(|&e| life.on(e)).collect();
        (life, todos)
    }

    fn close_at(todos: &[Todo]) -> Vec<usize> {
        (0..todos.len()).filter(|&i| todos[i].close_fd).collect()
    }

    #[test]
    fn an_http_answer_closes_once_written_without_waiting_for_a_fin() {
        use Event::*;
        let (life, todos) = run(&[
            RecvArmed,
            FinishNow,
            SendStarted,
            SendDone { more: false },
            ShutdownDone,
        ]);
        assert_eq!(
            todos[3].shutdown,
            Some(Shut::Write),
            "the answer is flushed first"
        );
        assert_eq!(
            todos[4].shutdown,
            Some(Shut::Both),
            "then torn down, no linger"
        );
        assert!(life.is_dead());
    }

    #[test]
    fn a_peer_fin_still_gets_what_is_queued_then_closes() {
        use Event::*;
        let (life, todos) = run(&[
            RecvArmed,
            Finish,
            SendStarted,
            RecvEnded, // the client's FIN, while the answer is in flight
            PeerFin,
            SendDone { more: false },
            ShutdownDone,
            ShutdownDone,
        ]);
        assert_eq!(todos[4], Todo::default(), "nothing dropped, nothing cut");
        assert_eq!(todos[5].shutdown, Some(Shut::Write));
        assert_eq!(todos[6].shutdown, Some(Shut::Both));
        assert!(todos[7].close_fd);
        assert!(life.is_dead());
    }

    #[test]
    fn graceful_close_send_completes_before_the_receive_eof() {
        use Event::*;
        let (life, todos) = run(&[
            RecvArmed,
            Finish,
            SendStarted,
            SendDone { more: false },
            ShutdownDone,
            RecvEnded, // the client's FIN
            Abort,
            ShutdownDone,
            CloseDone,
        ]);
        assert_eq!(todos[3].shutdown, Some(Shut::Write));
        assert_eq!(todos[6].shutdown, Some(Shut::Both));
        assert_eq!(close_at(&todos), vec![7]);
        assert!(todos[8].free_slot);
        assert_eq!(life.stage(), Stage::Closed);
    }

    #[test]
    fn receive_eof_arrives_while_the_send_is_in_flight() {
        use Event::*;
        let (_, todos) = run(&[
            RecvArmed,
            SendStarted,
            RecvEnded,
            Abort,
            ShutdownDone,
            SendFailed,
            CloseDone,
        ]);
        // The fd stays open while the send is in flight, closes once it completes.
        assert_eq!(close_at(&todos), vec![5]);
        assert!(todos[6].free_slot);
    }

    #[test]
    fn send_completing_after_abort_does_not_ask_for_more() {
        use Event::*;
        let (_, todos) = run(&[RecvArmed, SendStarted, Abort, SendDone { more: true }]);
        assert!(!todos[3].send_more);
        assert!(!todos[3].close_fd, "receive and shutdown still in flight");
    }

    #[test]
    fn close_waits_for_the_shutdown_and_the_receive() {
        use Event::*;
        let mut life = Lifecycle::new();
        let _ = life.on(RecvArmed);
        let todo = life.on(Abort);
        assert_eq!(todo.shutdown, Some(Shut::Both));
        assert!(!life.may_close_fd());
        assert!(
            !life.on(ShutdownDone).close_fd,
            "the receive is still armed"
        );
        let todo = life.on(RecvEnded);
        assert!(todo.close_fd && !todo.free_slot);
        assert!(!life.may_free_slot());
        assert!(life.on(CloseDone).free_slot);
    }

    #[test]
    fn abort_during_handshake_and_twice_is_one_shutdown() {
        use Event::*;
        let (life, todos) = run(&[RecvArmed, Abort, Abort, RecvEnded, ShutdownDone]);
        assert_eq!(todos[1].shutdown, Some(Shut::Both));
        assert_eq!(todos[2], Todo::default());
        assert_eq!(close_at(&todos), vec![4]);
        assert_eq!(life.stage(), Stage::Closing);
    }

    #[test]
    fn partial_send_asks_for_more_then_half_closes() {
        use Event::*;
        let (life, todos) = run(&[
            RecvArmed,
            Finish,
            SendStarted,
            SendDone { more: true },
            SendStarted,
            SendDone { more: false },
        ]);
        assert!(todos[3].send_more && todos[3].shutdown.is_none());
        assert_eq!(todos[5].shutdown, Some(Shut::Write));
        assert_eq!(life.stage(), Stage::HalfClosed);
    }

    #[test]
    fn linger_abort_after_half_close_keeps_both_shutdowns_counted() {
        use Event::*;
        let (_, todos) = run(&[
            RecvArmed,
            Finish,
            SendStarted,
            SendDone { more: false },
            Abort, // linger over before SHUT_WR completed
            ShutdownDone,
            RecvEnded,
            ShutdownDone,
        ]);
        assert_eq!(close_at(&todos), vec![7]);
    }

    #[test]
    fn live_connection_never_closes_its_fd() {
        use Event::*;
        let (life, todos) = run(&[RecvArmed, SendStarted, SendDone { more: false }, RecvEnded]);
        assert!(close_at(&todos).is_empty());
        assert!(life.may_recv() && life.may_send());
    }
}
