//! Rooms: the process-wide directory (touched only on join and leave, in this file) and each
//! worker's local member lists (touched on every message, owned by that worker alone, in
//! `local.rs`).

pub mod local;
pub mod stream;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A room as all workers see it: its name and which workers have members in it.
pub struct SharedRoom {
    /// Process-unique id, so workers can name the room in cross-core messages cheaply.
    pub id: u64,
    /// The room's name (the negotiated subprotocol).
    pub name: Arc<str>,
    /// Bit `w` is set while worker `w` has at least one member. Read on every message (one
    /// atomic load, no lock); written on a worker's first join and last leave.
    pub workers: AtomicU64,
}

/// Why a join was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinError {
    /// `--max-rooms` distinct rooms exist already.
    TooManyRooms,
}

/// Told when a room gets its first member in the process and when its last one leaves (the
/// cluster bus subscribes and unsubscribes). Called under the directory's lock, so the calls
/// for one room come in the order the transitions happened; they must not block.
pub trait RoomWatch: Send + Sync {
    /// `name` got its first member in this process.
    fn opened(&self, name: &Arc<str>);
    /// `name`'s last member in this process left.
    fn closed(&self, name: &Arc<str>);
}

/// The process-wide room directory. Its lock is taken only when a worker's first member joins
/// a room or its last member leaves, never per message.
pub struct Directory {
    rooms: Mutex<HashMap<Arc<str>, Arc<SharedRoom>>>,
    next_id: AtomicU64,
    max_rooms: usize,
    watch: Option<Arc<dyn RoomWatch>>,
}

impl Directory {
    /// An empty directory admitting at most `max_rooms` rooms.
    pub fn new(max_rooms: usize) -> Directory {
        Directory {
            rooms: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            max_rooms,
            watch: None,
        }
    }

    /// Reports every room's first join and last leave in this process to `watch`.
    pub fn set_watch(&mut self, watch: Arc<dyn RoomWatch>) {
        self.watch = Some(watch);
    }

    /// Number of rooms with members somewhere.
    pub fn len(&self) -> usize {
        self.rooms.lock().map_or(0, |r| r.len())
    }

    /// Marks `worker` as having members in `name`, creating the room if needed. The bit is set
    /// before the joining client gets its 101, so any publish it can observe reaches it.
    pub fn join(&self, name: &str, worker: usize) -> Result<Arc<SharedRoom>, JoinError> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let room = match rooms.get(name) {
            Some(r) => r.clone(),
            None => {
                if rooms.len() >= self.max_rooms {
                    return Err(JoinError::TooManyRooms);
                }
                let name: Arc<str> = Arc::from(name);
                let room = Arc::new(SharedRoom {
                    id: self.next_id.fetch_add(1, Ordering::Relaxed),
                    name: name.clone(),
                    workers: AtomicU64::new(0),
                });
                rooms.insert(name.clone(), room.clone());
                if let Some(w) = &self.watch {
                    w.opened(&name);
                }
                room
            }
        };
        room.workers.fetch_or(1 << worker, Ordering::AcqRel);
        Ok(room)
    }

    /// The room called `name`, if it has members somewhere (for a source of messages that is
    /// not a member, such as a cluster bus reader).
    pub fn get(&self, name: &str) -> Option<Arc<SharedRoom>> {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.get(name).cloned()
    }

    /// The names of the rooms with members in this process (the server API's `channels`,
    /// docs/api.md#channels): copied out, so the lock is held only for the copy.
    pub fn names(&self) -> Vec<Arc<str>> {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms.keys().cloned().collect()
    }

    /// Clears `worker`'s bit after its last member left; drops the room when no worker is left.
    pub fn leave(&self, room: &SharedRoom, worker: usize) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let left = room.workers.fetch_and(!(1 << worker), Ordering::AcqRel) & !(1 << worker);
        if left == 0 && rooms.get(&*room.name).is_some_and(|r| r.id == room.id) {
            rooms.remove(&*room.name);
            if let Some(w) = &self.watch {
                w.closed(&room.name);
            }
        }
    }
}
