//! Which CPU each worker thread runs on.
//!
//! A worker is pinned to the i-th CPU of the set this process may use (its affinity mask, as set
//! by `taskset`, a cgroup cpuset or a container runtime), not to CPU i: several ringcast processes
//! confined to different CPUs must not all pile onto CPU 0, and a CPU outside the mask cannot be
//! used anyway. `--no-pin` leaves placement to the kernel (several processes sharing the same
//! cores, such as a local cluster of nodes).

use std::io;

/// The CPUs the process may run on, in increasing order (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedCpus(Vec<usize>);

impl AllowedCpus {
    /// The calling thread's affinity mask (called on the main thread before workers start, so
    /// it is the process's). Falls back to `0..available_parallelism` if the mask can't be read.
    pub fn current() -> AllowedCpus {
        // SAFETY: cpu_set_t is plain data (all-zero is the empty set); sched_getaffinity writes
        // at most size_of::<cpu_set_t>() bytes into it.
        let (rc, set) = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            let rc = libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set);
            (rc, set)
        };
        let cpus: Vec<usize> = if rc == 0 {
            // SAFETY: CPU_ISSET reads the set we own; every index is below CPU_SETSIZE.
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
                .collect()
        } else {
            Vec::new()
        };
        if cpus.is_empty() {
            let n = std::thread::available_parallelism().map_or(1, usize::from);
            return AllowedCpus((0..n).collect());
        }
        AllowedCpus(cpus)
    }

    /// The CPU for worker `id`: the allowed CPUs in turn, wrapping around.
    pub fn for_worker(&self, id: usize) -> usize {
        self.0[id % self.0.len()]
    }
}

/// Pins the calling thread to `cpu`.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes inside the set when cpu < CPU_SETSIZE
    // (checked first); sched_setaffinity only reads the set.
    let rc = unsafe {
        if cpu >= libc::CPU_SETSIZE as usize {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_take_the_allowed_cpus_in_turn() {
        let cpus = AllowedCpus(vec![2, 5]);
        let picks: Vec<usize> = (0..5).map(|id| cpus.for_worker(id)).collect();
        assert_eq!(picks, [2, 5, 2, 5, 2]);
    }

    #[test]
    fn a_process_confined_to_one_cpu_pins_its_first_worker_there() {
        // A thread of its own, so the test harness's threads keep their mask.
        std::thread::spawn(|| {
            let all = AllowedCpus::current();
            let last = *all.0.last().expect("never empty");
            pin_current_thread(last).expect("pin to an allowed CPU");
            // As under `taskset -c <last>`: worker 0 goes to that CPU, not to CPU 0.
            let confined = AllowedCpus::current();
            assert_eq!(confined, AllowedCpus(vec![last]));
            assert_eq!(confined.for_worker(0), last);
            // SAFETY: sched_getcpu has no preconditions.
            assert_eq!(unsafe { libc::sched_getcpu() }, last as i32);
        })
        .join()
        .expect("test thread");
    }
}
