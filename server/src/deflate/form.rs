//! A batch's compressed form: its frames with each message long enough compressed once, for
//! every receiver on every worker that negotiated permessage-deflate.

use std::sync::Arc;

use super::reply::recode_one;
use super::with_deflater;

/// Frames back to back and each message's span in them (`fanout::batch::Form`'s shape).
pub type Frames = (Arc<[u8]>, Vec<(u32, u32)>);

/// The compressed form of `base`, an encoded form whose message `i` is the frame at
/// `spans[i]` (unmasked, FIN set): frames back to back and each message's span in them. A
/// message shorter than `--compression-min-size`, or not smaller once compressed, keeps its
/// plain frame (RSV1 is per message). `None` when no message was compressed: the receivers then
/// share the plain form itself.
pub fn compress_form(base: &[u8], spans: &[(u32, u32)]) -> Option<Frames> {
    with_deflater(|deflater| {
        // Most chat batches hold short messages only: no copy then.
        if !spans
            .iter()
            .any(|&(s, e)| deflater.worth_compressing((e - s) as usize))
        {
            return None;
        }
        let mut out = Vec::with_capacity(base.len());
        let mut out_spans = Vec::with_capacity(spans.len());
        let mut scratch = Vec::new();
        let mut any = false;
        for &(s, e) in spans {
            let frame = &base[s as usize..e as usize];
            let start = out.len() as u32;
            any |= recode_one(deflater, &mut out, frame, &mut scratch);
            out_spans.push((start, out.len() as u32));
        }
        any.then(|| (Arc::from(out.as_slice()), out_spans))
    })
}

#[cfg(test)]
mod tests {
    use ringcast_protocol::deflate::Inflater;
    use ringcast_protocol::frame::{Header, MessageKind, OpCode, encode_frame};

    use super::*;

    #[test]
    fn long_messages_are_compressed_and_short_ones_kept() {
        let long = "{\"text\":\"hello hello hello hello\"} ".repeat(20);
        let mut base = Vec::new();
        let mut spans = Vec::new();
        for payload in [long.as_bytes(), b"short".as_slice(), long.as_bytes()] {
            let s = base.len() as u32;
            encode_frame(&mut base, OpCode::Text, payload);
            spans.push((s, base.len() as u32));
        }
        let (form, out) = compress_form(&base, &spans).expect("compressed");
        assert_eq!(out.len(), 3);
        assert!(form.len() < base.len() / 2);
        let short = &form[out[1].0 as usize..out[1].1 as usize];
        assert_eq!(short, b"\x81\x05short", "a short message stays plain");
        let first = &form[out[0].0 as usize..out[0].1 as usize];
        let (h, len) = Header::parse(first, true).ok().flatten().expect("header");
        assert!(h.rsv1 && h.fin && h.opcode == OpCode::Text);
        let mut inflated = Vec::new();
        (Inflater::new())
            .inflate(&first[len..], MessageKind::Text, 1 << 20, &mut inflated)
            .expect("inflates");
        assert_eq!(inflated, long.as_bytes());
    }

    #[test]
    fn a_batch_of_short_messages_has_no_compressed_form() {
        let mut base = Vec::new();
        encode_frame(&mut base, OpCode::Text, b"hi");
        assert!(compress_form(&base, &[(0, base.len() as u32)]).is_none());
    }
}
