//! The per-worker io_uring: construction with a start-up probe, `user_data` tagging, and the
//! provided-buffer ring that multishot receives take their buffers from.
//!
//! Ownership rule: a provided buffer belongs to the kernel from the moment it is published in
//! the ring until a completion names its id; from then it belongs to the worker, which must give
//! it back (`BufRing::recycle`) once it has finished reading it in that same turn.

use std::io;

use io_uring::{IoUring, opcode, squeue, types};
use thiserror::Error;

/// A kernel without what ringcast needs.
#[derive(Debug, Error)]
pub enum RingError {
    /// io_uring itself is unavailable (old kernel, seccomp, sysctl `kernel.io_uring_disabled`).
    #[error("io_uring is unavailable: {0} (ringcast needs Linux 6.0+ with io_uring enabled)")]
    Setup(io::Error),
    /// An operation ringcast relies on is not supported.
    #[error("this kernel's io_uring lacks {0} (ringcast needs Linux 6.0+)")]
    Missing(&'static str),
    /// Registering the provided-buffer ring failed.
    #[error("cannot register the provided-buffer ring: {0} (needs Linux 5.19+)")]
    BufRing(io::Error),
}

/// Builds a worker ring and checks that every operation the worker uses is supported.
pub fn build(entries: u32) -> Result<IoUring, RingError> {
    let ring = IoUring::builder()
        .setup_single_issuer()
        .setup_coop_taskrun()
        .setup_defer_taskrun()
        .setup_cqsize(entries * 8)
        .build(entries)
        .or_else(|_| IoUring::builder().setup_cqsize(entries * 8).build(entries))
        .map_err(RingError::Setup)?;
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(RingError::Setup)?;
    for (code, name) in [
        (opcode::AcceptMulti::CODE, "ACCEPT"),
        (opcode::RecvMulti::CODE, "RECV"),
        (opcode::Writev::CODE, "WRITEV"),
        (opcode::MsgRingData::CODE, "MSG_RING"),
        (opcode::Shutdown::CODE, "SHUTDOWN"),
        (opcode::Close::CODE, "CLOSE"),
        (opcode::Timeout::CODE, "TIMEOUT"),
    ] {
        if !probe.is_supported(code) {
            return Err(RingError::Missing(name));
        }
    }
    if !ring.params().is_feature_ext_arg() {
        return Err(RingError::Missing("IORING_FEAT_EXT_ARG"));
    }
    Ok(ring)
}

/// A submission-queue entry whose memory is known to stay valid until its completion.
///
/// The worker's submission queue (`worker::sq::Sq`) accepts only these, and pushes them into
/// the ring in its one `unsafe` block; the promise that makes that push sound is made here,
/// by whoever builds the entry, where the reason is known.
pub struct Sqe(squeue::Entry);

impl Sqe {
    /// Wraps `entry`.
    ///
    /// # Safety
    /// Every pointer in `entry` (buffers, iovec arrays, timespecs) points to memory that stays
    /// allocated, unmoved and (for memory the kernel reads) unchanged until the entry's
    /// completion has been reaped, and every fd it names stays open until then.
    pub unsafe fn new(entry: squeue::Entry) -> Sqe {
        Sqe(entry)
    }

    /// The entry, for the one place that pushes it into the ring.
    pub fn entry(&self) -> &squeue::Entry {
        &self.0
    }
}

/// What a completion is for: the operation kind and the connection it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Multishot accept on the worker's listener.
    Accept,
    /// Multishot accept on the worker's plain listener beside a TLS one (`--plain-listen`).
    AcceptPlain,
    /// Multishot receive of connection (slot, generation).
    Recv(u32, u32),
    /// A send (writev) of connection (slot, generation).
    Send(u32, u32),
    /// Shutdown of connection (slot, generation).
    Shutdown(u32, u32),
    /// Close of connection (slot, generation).
    Close(u32, u32),
    /// Multishot accept on the worker's server API listener (`--api-listen`).
    ApiAccept,
    /// The periodic timer.
    Tick,
    /// A wake-up posted by another worker (MSG_RING).
    Wake,
    /// A completion whose result nobody waits for.
    Ignore,
}

impl Op {
    /// Packs the op into `user_data`: kind in the top 8 bits, a 24-bit generation, a 32-bit slot.
    pub fn encode(self) -> u64 {
        let (kind, slot, generation) = match self {
            Op::Accept => (1u64, 0, 0),
            Op::Recv(s, g) => (2, s, g),
            Op::Send(s, g) => (3, s, g),
            Op::Shutdown(s, g) => (4, s, g),
            Op::Close(s, g) => (5, s, g),
            Op::Tick => (6, 0, 0),
            Op::Wake => (7, 0, 0),
            Op::Ignore => (8, 0, 0),
            Op::AcceptPlain => (9, 0, 0),
            Op::ApiAccept => (10, 0, 0),
        };
        (kind << 56) | (u64::from(generation & 0xff_ffff) << 32) | u64::from(slot)
    }

    /// Unpacks `user_data` written by [`Op::encode`].
    pub fn decode(data: u64) -> Op {
        let slot = data as u32;
        let generation = ((data >> 32) & 0xff_ffff) as u32;
        match data >> 56 {
            1 => Op::Accept,
            2 => Op::Recv(slot, generation),
            3 => Op::Send(slot, generation),
            4 => Op::Shutdown(slot, generation),
            5 => Op::Close(slot, generation),
            6 => Op::Tick,
            7 => Op::Wake,
            9 => Op::AcceptPlain,
            10 => Op::ApiAccept,
            _ => Op::Ignore,
        }
    }
}

/// A ring of provided receive buffers (IORING_REGISTER_PBUF_RING), one buffer group per worker.
pub struct BufRing {
    /// Page-aligned ring of entries the kernel reads.
    ring: *mut types::BufRingEntry,
    ring_len: usize,
    /// The buffers themselves, `count * size` bytes (a leaked `Box<[u8]>`, freed in `Drop`).
    /// Kept as a raw pointer, never as a reference to the whole region: the kernel writes into
    /// the buffers it owns while the worker reads the one a completion handed over, so only
    /// that buffer is ever borrowed (issue 14 row 16).
    bufs: *mut u8,
    bufs_len: usize,
    size: usize,
    count: u16,
    tail: u16,
    group: u16,
}

impl BufRing {
    /// Allocates `count` (a power of two) buffers of `size` bytes and registers them as group
    /// `group` of `ring`.
    pub fn new(ring: &IoUring, group: u16, count: u16, size: u32) -> Result<BufRing, RingError> {
        let ring_len = usize::from(count) * std::mem::size_of::<types::BufRingEntry>();
        // SAFETY: an anonymous private mapping has no preconditions; the result is checked.
        let mem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if mem == libc::MAP_FAILED {
            return Err(RingError::BufRing(io::Error::last_os_error()));
        }
        let bufs_len = usize::from(count) * size as usize;
        let mut this = BufRing {
            ring: mem.cast(),
            ring_len,
            bufs: Box::into_raw(vec![0u8; bufs_len].into_boxed_slice()).cast::<u8>(),
            bufs_len,
            size: size as usize,
            count,
            tail: 0,
            group,
        };
        // SAFETY: `ring` points to `count` page-aligned entries that live as long as `this`,
        // which the worker keeps until after the io_uring is dropped.
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(mem as u64, count, group, 0)
                .map_err(RingError::BufRing)?;
        }
        for id in 0..count {
            this.push(id);
        }
        this.publish();
        Ok(this)
    }

    /// The buffer group id to name in receive SQEs.
    pub fn group(&self) -> u16 {
        self.group
    }

    /// The first `len` bytes of buffer `id`, which a completion just handed to us.
    pub fn get_mut(&mut self, id: u16, len: usize) -> &mut [u8] {
        assert!(id < self.count, "buffer id {id} out of range");
        let start = usize::from(id) * self.size;
        // A completion handed buffer `id` to the worker: the kernel does not write it again
        // until `recycle(id)`, which needs `&mut self`, so this borrow (tied to it) ends first.
        // SAFETY: `start + len.min(size)` lies inside the `count * size` allocation (id <
        // count), and the borrow above is the only reference to the region.
        unsafe { std::slice::from_raw_parts_mut(self.bufs.add(start), len.min(self.size)) }
    }

    fn push(&mut self, id: u16) {
        let idx = usize::from(self.tail & (self.count - 1));
        let addr = self.bufs as u64 + (usize::from(id) * self.size) as u64;
        // SAFETY: `idx` < `count`, so the entry lies inside the mapping made in `new`.
        let entry = unsafe { &mut *self.ring.add(idx) };
        entry.set_addr(addr);
        entry.set_len(self.size as u32);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&mut self) {
        // SAFETY: the ring base is the first entry of a registered buf ring; the tail field
        // overlays its reserved field, and the kernel reads it with acquire semantics.
        unsafe {
            let tail = types::BufRingEntry::tail(self.ring) as *const std::sync::atomic::AtomicU16;
            (*tail).store(self.tail, std::sync::atomic::Ordering::Release);
        }
    }

    /// Gives buffer `id` back to the kernel; the caller must hold no reference into it.
    pub fn recycle(&mut self, id: u16) {
        self.push(id);
        self.publish();
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `new` with this length; the worker drops the BufRing
        // only after its io_uring is gone, so the kernel no longer reads it.
        unsafe {
            libc::munmap(self.ring.cast(), self.ring_len);
        }
        let region = std::ptr::slice_from_raw_parts_mut(self.bufs, self.bufs_len);
        // SAFETY: `bufs` came from `Box::into_raw` of a boxed slice of `bufs_len` bytes in
        // `new`, and the kernel no longer writes it (the io_uring is gone, see above).
        drop(unsafe { Box::from_raw(region) });
    }
}
