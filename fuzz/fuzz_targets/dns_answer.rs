//! Any bytes as a DNS answer: decoding and turning records into the report never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::diag::dns::{decode_reply, records_of};

fuzz_target!(|data: &[u8]| {
    let id = data.get(..2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    if let Some(m) = decode_reply(data, id) {
        let _ = records_of(&m);
    }
});
