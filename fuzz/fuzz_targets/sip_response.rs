//! Any datagram as a SIP response: parsing never panics, and what it accepts answers every
//! question the transaction asks of it (branch, CSeq, Call-ID, challenges) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::sip::{Challenge, parse_response};

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = parse_response(data) {
        assert!((100..=699).contains(&r.status));
        let _ = r.top_via_branch();
        let _ = r.cseq();
        let _ = r.call_id();
        for v in r.all("WWW-Authenticate").chain(r.all("Proxy-Authenticate")) {
            if let Some(c) = Challenge::parse(v) {
                let _ = c.answerable();
            }
        }
    }
});
