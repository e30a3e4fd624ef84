//! The io_uring instance of one loop: set-up (with the fast flags when the kernel has them),
//! socket addresses in the form `connect` takes, and the wait for completions.

use std::net::SocketAddr;

use io_uring::{IoUring, types};

pub(super) fn new_ring(entries: u32) -> std::io::Result<IoUring> {
    let fast = IoUring::builder()
        .setup_cqsize(entries * 8)
        .setup_single_issuer()
        .setup_coop_taskrun()
        .setup_defer_taskrun()
        .build(entries);
    match fast {
        Ok(r) => Ok(r),
        Err(_) => IoUring::builder().setup_cqsize(entries * 8).build(entries),
    }
}

pub(super) fn to_sockaddr(addr: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut storage as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// Submits what is queued and waits for at least one completion, until `deadline` (ns since the
/// shared base; `now` is the current time) if there is one. A timeout or an interruption is not
/// an error.
pub(super) fn wait(ring: &mut IoUring, now: u64, deadline: Option<u64>) -> std::io::Result<()> {
    let res = match deadline {
        None => ring.submit_and_wait(1),
        // Even when nothing may wait, the enter must carry GETEVENTS (a wait with a zero
        // timeout): with DEFER_TASKRUN the kernel posts completions only then, and a plain
        // submit would leave a loop whose deadline is always past (a fixed-rate publisher
        // behind schedule, blocked on its window) spinning without ever seeing the receive
        // that gives it credit.
        Some(d) => {
            let dt = d.saturating_sub(now);
            let ts = types::Timespec::new()
                .sec(dt / 1_000_000_000)
                .nsec((dt % 1_000_000_000) as u32);
            let args = types::SubmitArgs::new().timespec(&ts);
            ring.submitter().submit_with_args(1, &args)
        }
    };
    match res {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}
