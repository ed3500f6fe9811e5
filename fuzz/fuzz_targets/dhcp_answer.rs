//! Any bytes as a DHCP answer: parsing and decoding every option must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::diag::options::{decode, parse_packet};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = parse_packet(data) {
        for o in &p.options {
            let _ = decode(o.code, &o.data);
        }
    }
    for code in [2u8, 43, 60, 120, 150, 160] {
        let _ = decode(code, data);
    }
});
