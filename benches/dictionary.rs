//! Parameter dictionary benchmark (prints figures; not a timed test): `zerotouch lint` of
//! one profile file of 5,000 parameters — the whole lint, and the dictionary checks alone
//! against the built-in dictionary and against a 10,000-entry dictionary (the built-in one
//! plus generated entries, the size of a release schema). The profile holds 5,000 distinct
//! known names with good values, with 1% unknown names, 1% near misses (a letter added)
//! and about 1% bad values; the worst cases check 5,000 names that are all unknown or all
//! near misses (each one searched for near misses).
//!
//! Run: `cargo bench --bench dictionary` (or `scripts/bench-dictionary.sh`). Target: under
//! 50 ms for the 5,000-parameter lint.

use std::time::{Duration, Instant};

use zerotouch::domain::lint::{self, Transport};
use zerotouch::domain::paramcheck::{self, Deliberate};
use zerotouch::domain::polycom::dictionary::{self, Dictionary, Entry, Families, Kind};
use zerotouch::domain::template::Vars;
use zerotouch::domain::xml;

const PARAMS: usize = 5_000;

/// A value the entry allows.
fn good_value(e: &Entry) -> String {
    match &e.kind {
        Kind::Bool => "1".into(),
        Kind::Int { min, .. } => min.to_string(),
        Kind::Enum(v) => v[0].clone(),
        Kind::Str { .. } => "text".into(),
        Kind::Url => "http://example.com/x".into(),
        Kind::Host => "sip.example.com".into(),
    }
}

/// 5,000 distinct parameters of the built-in dictionary (every index of each entry in
/// turn), one per line; 1% unknown names, 1% near misses, 1% values outside the allowed.
fn profile() -> Vec<u8> {
    let mut names = Vec::new();
    'all: for round in 1..=255u32 {
        for e in dictionary::builtin().entries() {
            if e.pattern.contains('*') || e.owned {
                continue;
            }
            if e.ranges.is_empty() && round > 1
                || e.ranges.iter().any(|(lo, hi)| round < *lo || round > *hi)
            {
                continue;
            }
            let name = e
                .pattern
                .replace(".N.", &format!(".{round}."))
                .replace(".N.", &format!(".{round}."));
            let name = name
                .strip_suffix(".N")
                .map_or(name.clone(), |b| format!("{b}.{round}"));
            names.push((name, good_value(e)));
            if names.len() == PARAMS {
                break 'all;
            }
        }
    }
    let mut text = String::from("<polycomConfig\n");
    for (n, (name, value)) in names.into_iter().enumerate() {
        let (name, value) = match n % 100 {
            0 => (format!("acme.custom{n}.setting"), "1".to_string()),
            1 => (format!("{name}x"), value),
            2 if value == "1" => (name, "banana".to_string()),
            _ => (name, value),
        };
        text.push_str(&format!(" {name}=\"{value}\"\n"));
    }
    text.push_str("/>\n");
    text.into_bytes()
}

/// The built-in entries plus generated ones, up to `size` entries.
fn big_dictionary(size: usize) -> Dictionary {
    let mut entries: Vec<Entry> = dictionary::builtin().entries().to_vec();
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    ];
    let mut n = 0;
    while entries.len() < size {
        let a = words[n % words.len()];
        let b = words[(n / words.len()) % words.len()];
        let pattern = format!("gen.{a}.N.{b}{n}.value");
        entries.push(Entry {
            name: pattern.replace(".N.", ".[1-16]."),
            pattern,
            ranges: vec![(1, 16)],
            kind: Kind::Int { min: 0, max: 100 },
            default: None,
            families: Families::Ucs,
            secret: false,
            owned: false,
            source: "guide".into(),
            description: "generated".into(),
        });
        n += 1;
    }
    Dictionary::from_entries(entries).expect("unique patterns")
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn time(label: &str, runs: usize, mut f: impl FnMut() -> usize) {
    let mut t = Vec::with_capacity(runs);
    let mut out = 0;
    for _ in 0..runs {
        let start = Instant::now();
        out = f();
        t.push(start.elapsed());
    }
    let m = median(t);
    println!(
        "{label:<62} {:>8.2} ms  ({out} findings)",
        m.as_secs_f64() * 1e3
    );
}

fn main() {
    let bytes = profile();
    let files = vec![("site.cfg".to_string(), bytes.clone())];
    let params = xml::parse_params("site.cfg", &bytes).expect("parse");
    assert_eq!(params.len(), PARAMS);
    let none = Deliberate::default();
    let builtin = dictionary::builtin();
    let big = big_dictionary(10_000);
    println!(
        "dictionary: built-in {} entries, large {} entries; profile of {} parameters",
        builtin.entries().len(),
        big.entries().len(),
        params.len()
    );
    let check_all = |d: &Dictionary| {
        params
            .iter()
            .map(|p| paramcheck::check(d, &none, "site.cfg", p.line, &p.name, &p.value, true).len())
            .sum()
    };
    time(
        "whole lint (parse, duplicates, precedence, dictionary)",
        15,
        || lint::lint_files(&files, Transport::Unknown, &Vars::default()).len(),
    );
    time("of which parsing the XML (xml::parse_params)", 15, || {
        xml::parse_params("site.cfg", &bytes).map_or(0, |p| p.len())
    });
    time("dictionary checks only, built-in dictionary", 15, || {
        check_all(builtin)
    });
    time(
        "dictionary checks only, 10,000-entry dictionary",
        15,
        || check_all(&big),
    );
    let unknown: Vec<String> = (0..PARAMS).map(|n| format!("zz.unknown{n}.name")).collect();
    time(
        "worst case: 5,000 unknown names, 10,000-entry dictionary",
        5,
        || {
            unknown
                .iter()
                .map(|n| paramcheck::check(&big, &none, "x", 1, n, "1", true).len())
                .sum()
        },
    );
    let typos: Vec<String> = (0..PARAMS)
        .map(|n| format!("reg.{}.adress", n % 30 + 1))
        .collect();
    time(
        "worst case: 5,000 near misses, 10,000-entry dictionary",
        5,
        || {
            typos
                .iter()
                .map(|n| paramcheck::check(&big, &none, "x", 1, n, "1", true).len())
                .sum()
        },
    );
}
