//! The hand-off of frozen batches to other workers: gathered per target worker (from a room's
//! worker bitmask) during a turn or a bus burst, then sent as one `Remote::Deliver` and one
//! MSG_RING wake per target. The worker's own turn ([`Outbox`]) and the bus thread's burst
//! (`fanout::bus`) gather the same way, through [`PerWorker`].

use std::os::fd::RawFd;
use std::sync::Arc;

use crate::fanout::batch::FrozenBatch;
use crate::fanout::peers::{Peers, Remote};

/// Batches per target worker, in the order they were added.
#[derive(Default)]
pub struct PerWorker {
    lists: Vec<Vec<Arc<FrozenBatch>>>,
}

impl PerWorker {
    /// Lists for `n` workers.
    pub fn new(n: usize) -> PerWorker {
        PerWorker {
            lists: (0..n).map(|_| Vec::new()).collect(),
        }
    }

    /// Adds `batch` for every worker in the bitmask `workers` (bits past the last worker are
    /// ignored).
    pub fn add(&mut self, workers: u64, batch: &Arc<FrozenBatch>) {
        let mut bits = workers;
        while bits != 0 {
            let to = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if let Some(list) = self.lists.get_mut(to) {
                list.push(batch.clone());
            }
        }
    }

    /// Takes every worker's batches, oldest first: (worker, batches) for each worker that has
    /// some.
    pub fn take(&mut self) -> Vec<(usize, Vec<Arc<FrozenBatch>>)> {
        (self.lists.iter_mut().enumerate())
            .filter(|(_, list)| !list.is_empty())
            .map(|(to, list)| (to, std::mem::take(list)))
            .collect()
    }

    /// Sends what was gathered through `peers`, one `Remote::Deliver` per target; `wake` gets
    /// the ring fd of every worker sent to.
    pub fn send(&mut self, peers: &Peers, mut wake: impl FnMut(RawFd)) {
        for (to, batches) in self.take() {
            if let Some(fd) = peers.send(to, Remote::Deliver(batches)) {
                wake(fd);
            }
        }
    }
}

/// Frozen batches a worker hands to the others, collected during a turn and sent at its end.
pub struct Outbox {
    peers: Peers,
    gathered: PerWorker,
}

impl Outbox {
    /// An outbox to `peers`.
    pub fn new(peers: Peers) -> Outbox {
        let gathered = PerWorker::new(peers.len());
        Outbox { peers, gathered }
    }

    /// Adds `batch` for every worker in the bitmask `workers`.
    pub fn push(&mut self, workers: u64, batch: &Arc<FrozenBatch>) {
        self.gathered.add(workers, batch);
    }

    /// Sends what was collected; `wake` gets the ring fd of every worker sent to.
    pub fn send(&mut self, wake: impl FnMut(RawFd)) {
        self.gathered.send(&self.peers, wake);
    }

    /// The workers' addresses.
    pub fn peers(&self) -> &Peers {
        &self.peers
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use ringcast_protocol::frame::OpCode;

    use super::*;
    use crate::fanout::batch::BatchBuilder;
    use crate::rooms::SharedRoom;

    fn batch(id: u64) -> Arc<FrozenBatch> {
        let room = Arc::new(SharedRoom {
            id,
            name: Arc::from(format!("r{id}")),
            workers: AtomicU64::new(0),
        });
        let mut b = BatchBuilder::new(room);
        b.push(Some(0), OpCode::Text, b"m");
        Arc::new(b.freeze(None, false))
    }

    #[test]
    fn each_worker_gets_its_batches_in_arrival_order_once() {
        let mut gathered = PerWorker::new(3);
        let (a, b, c) = (batch(1), batch(2), batch(3));
        gathered.add(0b011, &a);
        gathered.add(0b110, &b);
        gathered.add(0b1001, &c); // worker 3 does not exist
        gathered.add(0b001, &b);
        let ids = |list: &[Arc<FrozenBatch>]| {
            (list.iter())
                .filter_map(|b| b.room().map(|r| r.id))
                .collect::<Vec<_>>()
        };
        let taken: Vec<_> = (gathered.take().into_iter())
            .map(|(to, list)| (to, ids(&list)))
            .collect();
        assert_eq!(
            taken,
            vec![(0, vec![1, 3, 2]), (1, vec![1, 2]), (2, vec![2])]
        );
        assert!(gathered.take().is_empty(), "what was taken is gone");
    }
}
