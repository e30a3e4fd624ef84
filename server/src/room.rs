//! Rooms: the process-wide directory (touched only on join and leave) and each worker's local
//! member lists (touched on every message, owned by that worker alone).

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

/// The process-wide room directory. Its lock is taken only when a worker's first member joins
/// a room or its last member leaves, never per message.
pub struct Directory {
    rooms: Mutex<HashMap<Arc<str>, Arc<SharedRoom>>>,
    next_id: AtomicU64,
    max_rooms: usize,
}

impl Directory {
    /// An empty directory admitting at most `max_rooms` rooms.
    pub fn new(max_rooms: usize) -> Directory {
        Directory {
            rooms: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            max_rooms,
        }
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
                rooms.insert(name, room.clone());
                room
            }
        };
        room.workers.fetch_or(1 << worker, Ordering::AcqRel);
        Ok(room)
    }

    /// Clears `worker`'s bit after its last member left; drops the room when no worker is left.
    pub fn leave(&self, room: &SharedRoom, worker: usize) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        let left = room.workers.fetch_and(!(1 << worker), Ordering::AcqRel) & !(1 << worker);
        if left == 0 && rooms.get(&*room.name).is_some_and(|r| r.id == room.id) {
            rooms.remove(&*room.name);
        }
    }
}

/// A worker's view of one room: its local members.
pub struct LocalRoom {
    /// Slab keys of local members; a member stores its index here for O(1) removal.
    pub members: Vec<usize>,
}

/// A worker's local rooms, by shared room id.
#[derive(Default)]
pub struct LocalRooms {
    rooms: HashMap<u64, LocalRoom>,
}

impl LocalRooms {
    /// The local room with `id`, if this worker has members in it.
    pub fn get(&self, id: u64) -> Option<&LocalRoom> {
        self.rooms.get(&id)
    }

    /// Adds member `key`; returns its index in the member list.
    pub fn add(&mut self, shared: &Arc<SharedRoom>, key: usize) -> usize {
        let room = self.rooms.entry(shared.id).or_insert_with(|| LocalRoom {
            members: Vec::new(),
        });
        room.members.push(key);
        room.members.len() - 1
    }

    /// Removes the member at `index`. Returns the key of the member that moved into `index`
    /// (so the caller can update its stored index) and whether the room is now empty here.
    pub fn remove(&mut self, id: u64, index: usize) -> (Option<usize>, bool) {
        let Some(room) = self.rooms.get_mut(&id) else {
            return (None, true);
        };
        room.members.swap_remove(index);
        let moved = room.members.get(index).copied();
        if room.members.is_empty() {
            self.rooms.remove(&id);
            return (moved, true);
        }
        (moved, false)
    }
}
