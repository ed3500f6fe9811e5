//! Any text as a profile template: checking, expanding and the check form never panic,
//! and text without `$` expands to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zerotouch::domain::template::{Vars, check, check_form, expand, render};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut vars = Vars::default();
    vars.set_custom("A", "<&\"'>");
    vars.set_custom("LABEL", "${A}");
    let _ = check("fuzz.cfg", &text, &vars);
    let _ = check_form(&text);
    let (out, _) = expand(&text, &vars);
    if !text.contains('$') && !text.contains("zerotouch:") {
        assert_eq!(out, text);
    }
    let _ = render(&text, &vars, &[(1, vars.clone()), (2, Vars::default())]);
});
