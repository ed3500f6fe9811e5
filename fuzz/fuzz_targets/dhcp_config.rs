//! Any text as a DHCP server configuration in each dialect: reading must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::diag::dhcpconf::{Dialect, analyze_text};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for d in [Dialect::Isc, Dialect::Kea, Dialect::Dnsmasq, Dialect::Windows] {
        let _ = analyze_text("fuzz.conf", &text, d);
    }
});
