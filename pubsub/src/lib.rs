//! ringcast's pub/sub layer without I/O: topic history, presence and token auth.

pub mod auth;
pub mod history;
pub mod presence;
