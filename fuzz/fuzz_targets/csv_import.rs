//! Any bytes as a bulk-association CSV: parsing never panics, every line is either
//! accepted or rejected with a reason, and the rejected-lines file can always be built.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::domain::csvimport::{parse, rejected_file};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = parse(data, 200) {
        let _ = p.total();
        for r in &p.rejected {
            assert!(!r.reason.is_empty());
        }
        let _ = rejected_file(1, &p.rejected);
    }
});
