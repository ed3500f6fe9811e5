//! Any User-Agent: parsing never panics, and a serial tag is always a well-formed MAC.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::domain::useragent::parse;

fuzz_target!(|data: &[u8]| {
    let ua = String::from_utf8_lossy(data);
    if let Some(u) = parse(&ua) {
        let _ = u.firmware();
        let _ = u.family_name();
        if let Some(mac) = u.serial_mac {
            assert_eq!(mac.as_str().len(), 12);
        }
    }
});
