//! What a connection owns that the kernel touches: its lifecycle (which operations are in
//! flight, when its fd may close and its slot be freed) and its outbound queue (the bytes a
//! WRITEV reads). Both are leaf types with no knowledge of the worker, unit-tested alone.

pub mod lifecycle;
pub mod outq;
