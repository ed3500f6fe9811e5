//! Any bytes as Polycom configuration files: the lint never panics, alone or after a
//! master that lists them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::domain::lint::{Transport, lint_files, master_config_files};
use zerotouch::domain::template::Vars;

fuzz_target!(|data: &[u8]| {
    let (a, b) = data.split_at(data.len() / 2);
    let _ = master_config_files(data);
    let files = vec![
        ("a.cfg".to_string(), a.to_vec()),
        ("b.cfg".to_string(), b.to_vec()),
    ];
    for t in [Transport::PlainHttp, Transport::HttpsOnly, Transport::Unknown] {
        let _ = lint_files(&files, t, &Vars::default());
    }
});
