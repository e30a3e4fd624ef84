//! A worker's local room membership: for each room with members on this worker, the members'
//! slab keys grouped by delivery class. Owned by one worker, touched on every delivery, never
//! shared.

use std::collections::HashMap;

use crate::rooms::stream::RoomStream;

/// How a member wants a room's messages. Each class is one encoded form of a frozen batch
/// (`fanout::FrozenBatch::form`), built once per room per turn and only when a member of that
/// class exists. The `*Deflate` classes negotiated permessage-deflate: they get the same
/// messages as their plain class, long ones compressed once for all of them (docs/compression.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Raw WebSocket frames, the payload as the sender wrote it (room mode).
    Raw,
    /// Pub/sub subscribers: JSON envelopes (`{"op":"message",…}`), no presence events.
    Json,
    /// Pub/sub subscribers that asked for presence: envelopes and join/leave events.
    JsonPresence,
    /// `Raw`, compressed.
    RawDeflate,
    /// `Json`, compressed.
    JsonDeflate,
    /// `JsonPresence`, compressed.
    JsonPresenceDeflate,
}

impl Class {
    /// Number of classes.
    pub const COUNT: usize = 6;
    /// Every class, in index order.
    pub const ALL: [Class; Class::COUNT] = [
        Class::Raw,
        Class::Json,
        Class::JsonPresence,
        Class::RawDeflate,
        Class::JsonDeflate,
        Class::JsonPresenceDeflate,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The class without compression: what messages and events its members get.
    pub fn plain(self) -> Class {
        match self {
            Class::RawDeflate => Class::Raw,
            Class::JsonDeflate => Class::Json,
            Class::JsonPresenceDeflate => Class::JsonPresence,
            plain => plain,
        }
    }

    /// The class of a member with (`true`) or without permessage-deflate.
    pub fn with_deflate(self, deflate: bool) -> Class {
        match (self.plain(), deflate) {
            (plain, false) => plain,
            (Class::Raw, true) => Class::RawDeflate,
            (Class::Json, true) => Class::JsonDeflate,
            (_, true) => Class::JsonPresenceDeflate,
        }
    }

    /// A class that gets compressed frames.
    pub fn is_deflate(self) -> bool {
        self.plain() != self
    }
}

/// Where a member sits in its local room, kept by the member for O(1) removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The member's class.
    pub class: Class,
    /// Its index in that class's member list.
    pub index: usize,
}

/// A worker's view of one room: its local members, per class, and where they stand in the
/// room's ordered streams.
#[derive(Debug, Default)]
pub struct LocalRoom {
    members: [Vec<usize>; Class::COUNT],
    stream: RoomStream,
}

impl LocalRoom {
    /// Members of `class`.
    pub fn members(&self, class: Class) -> &[usize] {
        &self.members[class.index()]
    }

    /// The classes with at least one member, with their members.
    pub fn classes(&self) -> impl Iterator<Item = (Class, &[usize])> {
        Class::ALL
            .into_iter()
            .map(|c| (c, self.members(c)))
            .filter(|(_, m)| !m.is_empty())
    }

    /// No local members.
    pub fn is_empty(&self) -> bool {
        self.members.iter().all(Vec::is_empty)
    }

    /// Where the worker and each member stand in the room's streams.
    pub fn stream(&self) -> &RoomStream {
        &self.stream
    }

    /// The room's stream positions, to move them.
    pub fn stream_mut(&mut self) -> &mut RoomStream {
        &mut self.stream
    }
}

/// What a removal changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Left {
    /// The member moved into the freed slot (its stored index must become the freed one).
    pub moved: Option<usize>,
    /// The room has no local member left (clear this worker's bit in the directory).
    pub empty: bool,
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

    /// The local room with `id`, to change its skip list.
    pub fn get_mut(&mut self, id: u64) -> Option<&mut LocalRoom> {
        self.rooms.get_mut(&id)
    }

    /// Adds member `key` of `class` to room `id`; returns where it sits.
    pub fn join(&mut self, id: u64, key: usize, class: Class) -> Slot {
        let members = &mut self.rooms.entry(id).or_default().members[class.index()];
        members.push(key);
        Slot {
            class,
            index: members.len() - 1,
        }
    }

    /// Removes the member at `slot` of room `id` (swap-remove: the last member of the class
    /// moves into the slot, and [`Left::moved`] names it).
    pub fn leave(&mut self, id: u64, slot: Slot) -> Left {
        let Some(room) = self.rooms.get_mut(&id) else {
            return Left {
                moved: None,
                empty: true,
            };
        };
        let members = &mut room.members[slot.class.index()];
        debug_assert!(slot.index < members.len(), "stale member slot {slot:?}");
        if slot.index >= members.len() {
            return Left {
                moved: None,
                empty: room.is_empty(),
            };
        }
        let gone = members.swap_remove(slot.index);
        let moved = members.get(slot.index).copied();
        room.stream.forget(gone);
        let empty = room.is_empty();
        if empty {
            self.rooms.remove(&id);
        }
        Left { moved, empty }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_returns_slots_in_order() {
        let mut rooms = LocalRooms::default();
        assert_eq!(rooms.join(7, 10, Class::Raw).index, 0);
        assert_eq!(rooms.join(7, 11, Class::Raw).index, 1);
        assert_eq!(rooms.join(8, 12, Class::Raw).index, 0);
        assert_eq!(
            rooms.get(7).map(|r| r.members(Class::Raw)),
            Some(&[10, 11][..])
        );
        assert_eq!(rooms.get(8).map(|r| r.members(Class::Raw)), Some(&[12][..]));
    }

    #[test]
    fn leave_swap_removes_and_names_the_moved_member() {
        let mut rooms = LocalRooms::default();
        let a = rooms.join(1, 100, Class::Raw);
        let _b = rooms.join(1, 101, Class::Raw);
        let c = rooms.join(1, 102, Class::Raw);
        let left = rooms.leave(1, a);
        assert_eq!(
            left,
            Left {
                moved: Some(102),
                empty: false
            }
        );
        assert_eq!(
            rooms.get(1).map(|r| r.members(Class::Raw)),
            Some(&[102, 101][..])
        );
        // The moved member's slot is now `a`'s index: removing it there works.
        let c = Slot {
            index: a.index,
            ..c
        };
        assert_eq!(
            rooms.leave(1, c),
            Left {
                moved: Some(101),
                empty: false
            }
        );
        assert_eq!(
            rooms.get(1).map(|r| r.members(Class::Raw)),
            Some(&[101][..])
        );
    }

    #[test]
    fn removing_the_last_member_empties_the_room() {
        let mut rooms = LocalRooms::default();
        let a = rooms.join(1, 5, Class::Raw);
        let b = rooms.join(1, 6, Class::Raw);
        assert_eq!(
            rooms.leave(1, b),
            Left {
                moved: None,
                empty: false
            }
        );
        assert_eq!(
            rooms.leave(1, a),
            Left {
                moved: None,
                empty: true
            }
        );
        assert!(rooms.get(1).is_none());
        assert_eq!(
            rooms.leave(1, a),
            Left {
                moved: None,
                empty: true
            }
        );
    }

    #[test]
    fn classes_lists_only_classes_with_members() {
        let mut rooms = LocalRooms::default();
        rooms.join(3, 1, Class::Raw);
        let room = rooms.get(3).expect("room");
        let classes: Vec<_> = room.classes().collect();
        assert_eq!(classes, vec![(Class::Raw, &[1][..])]);
        assert!(!room.is_empty());
    }
}
