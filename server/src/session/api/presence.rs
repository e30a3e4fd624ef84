//! `presence` and `presence_stats` (docs/api.md#presence): this node's registry without a
//! cluster; in a cluster every node's members, asked of Redis when the answer is queued
//! (`replies`) and written here when they arrive (`Remote::ApiPresence`).

use std::collections::HashSet;

use ringcast_cluster::PresenceMember;
use ringcast_pubsub::envelope::{write_str, write_u64};

use crate::session::sink::Sink;

use super::methods::{ApiError, LIMIT_EXCEEDED};

/// `{"presence":{…}}` of this node's members of `channel`.
pub fn local_presence(sink: &Sink<'_>, channel: &str, out: &mut Vec<u8>) -> Result<(), ApiError> {
    let snap = sink.hub().presence.snapshot(channel);
    let Some(members) = snap.members else {
        return Err(ApiError::new(
            LIMIT_EXCEEDED,
            "more members than --presence-max: use presence_stats",
        ));
    };
    let list = members
        .iter()
        .map(|m| (m.client.as_str(), m.user.as_deref().unwrap_or("")));
    presence(out, list, false);
    Ok(())
}

/// `{"num_clients":N,"num_users":M}` of this node's members of `channel`.
pub fn local_stats(sink: &Sink<'_>, channel: &str, out: &mut Vec<u8>) {
    let (clients, users) = sink.hub().presence.stats(channel);
    stats(out, clients, users);
}

/// The answer for every node's `members` (`None`: Redis could not answer, so this node's
/// own): `presence` lists at most `--presence-max` of them (then `"truncated":true`, since the
/// call already answers `result`), `presence_stats` counts them.
pub fn cluster(
    sink: &Sink<'_>,
    channel: &str,
    stats_only: bool,
    members: Option<Vec<PresenceMember>>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let Some(members) = members else {
        if stats_only {
            local_stats(sink, channel, &mut out);
        } else if local_presence(sink, channel, &mut out).is_err() {
            presence(&mut out, std::iter::empty(), true);
        }
        return out;
    };
    if stats_only {
        let users: HashSet<&str> = members.iter().map(|m| m.user.as_str()).collect();
        stats(&mut out, members.len(), users.len());
    } else {
        let max = sink.config().presence_max;
        let list = members.iter().take(max);
        let list = list.map(|m| (m.client.as_str(), m.user.as_str()));
        presence(&mut out, list, members.len() > max);
    }
    out
}

/// `{"presence":{"<client>":{"client":…,"user":…},…}}`.
fn presence<'a>(
    out: &mut Vec<u8>,
    members: impl Iterator<Item = (&'a str, &'a str)>,
    truncated: bool,
) {
    out.extend_from_slice(b"{\"presence\":{");
    for (i, (client, user)) in members.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, client);
        out.extend_from_slice(b":{\"client\":");
        write_str(out, client);
        out.extend_from_slice(b",\"user\":");
        write_str(out, user);
        out.push(b'}');
    }
    out.push(b'}');
    if truncated {
        out.extend_from_slice(b",\"truncated\":true");
    }
    out.push(b'}');
}

fn stats(out: &mut Vec<u8>, clients: usize, users: usize) {
    out.extend_from_slice(b"{\"num_clients\":");
    write_u64(out, clients as u64);
    out.extend_from_slice(b",\"num_users\":");
    write_u64(out, users as u64);
    out.push(b'}');
}
