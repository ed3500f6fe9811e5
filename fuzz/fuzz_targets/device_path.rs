//! Any request path: decoding and classification never panic, a classified file never
//! names a MAC the path does not contain, and no segment can climb out of a directory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::domain::devicepath::{classify, segments};

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(segs) = segments(path) else { return };
    for s in &segs {
        assert!(!s.is_empty() && s != "." && s != "..", "segment {s:?}");
        assert!(!s.contains('/') && !s.contains('\\'), "segment {s:?}");
    }
    if let Some(file) = classify(&segs)
        && let Some(mac) = file.mac()
    {
        let lower = segs.join("/").to_ascii_lowercase();
        assert!(lower.contains(mac.as_str()), "{mac} not in {segs:?}");
    }
});
