//! The parameter dictionary: every Polycom/Poly parameter zerotouch knows, with its type,
//! allowed values or range, default, family, secret and owned flags and a one-line
//! description.
//!
//! The built-in core (`dictionary.tsv`, compiled in, parsed once) is written by hand from
//! public facts: the parameters zerotouch renders or owns, the ones admins set as policies,
//! lines, SIP servers, provisioning and polling, time and language, security basics,
//! feature keys and video basics. Indexed names are written with their ranges
//! (`reg.[1-34].address`) and looked up with any index in place (`reg.7.address`).
//! This module answers "what is this name" and "is this value allowed"; what to do with a
//! mismatch (warning, error, deliberate) is `domain::paramcheck`'s. It never reads files or
//! the database, and it is not on the path phones fetch from: values are checked when they
//! enter.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The compiled-in core dictionary.
const BUILTIN: &str = include_str!("dictionary.tsv");

/// A parameter's value type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `0`/`1` (`true`/`false` also read).
    Bool,
    /// A whole number within `min..=max`.
    Int { min: i64, max: i64 },
    /// One of the listed values (case-sensitive, as phones read them).
    Enum(Vec<String>),
    /// Any text, at most `max` characters when given.
    Str { max: Option<usize> },
    /// A full URL with its scheme.
    Url,
    /// A host name or address, with an optional port, or a URL.
    Host,
}

/// Which software family reads a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Families {
    Ucs,
    PolyOs,
    Both,
}

impl Families {
    /// The family in words, for pages.
    pub fn label(self) -> &'static str {
        match self {
            Families::Ucs => "UCS",
            Families::PolyOs => "Poly OS",
            Families::Both => "UCS and Poly OS",
        }
    }
}

/// One dictionary entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name as written in the dictionary (`reg.[1-34].address`).
    pub name: String,
    /// The name with each index segment as `N` and `*` for any word (`reg.N.address`).
    pub pattern: String,
    /// The range of each `N`, in order.
    pub ranges: Vec<(u32, u32)>,
    pub kind: Kind,
    /// The phone's default, where a public source states it.
    pub default: Option<String>,
    pub families: Families,
    pub secret: bool,
    /// Set only by the credential state machine (`domain::machine::owned`).
    pub owned: bool,
    /// Where the entry comes from (`zt`, `guide`, `lync`, `export`, `fixture`).
    pub source: String,
    pub description: String,
}

impl Entry {
    /// A platform (`device.*`) parameter: applied only with `.set` and `device.set`.
    pub fn is_device(&self) -> bool {
        self.pattern.starts_with("device.")
    }

    /// A concrete name of the entry: each index segment at the start of its range
    /// (`reg.[1-34].address` → `reg.1.address`); `None` when a segment is any word (`*`).
    pub fn first_name(&self) -> Option<String> {
        let mut ranges = self.ranges.iter();
        let segs: Option<Vec<String>> = self
            .pattern
            .split('.')
            .map(|s| match s {
                "N" => ranges.next().map(|(lo, _)| lo.to_string()),
                "*" => None,
                s => Some(s.to_string()),
            })
            .collect();
        segs.map(|s| s.join("."))
    }

    /// The allowed values in words, for messages (`one of 0, 1, 2, 3`).
    pub fn allowed(&self) -> String {
        match &self.kind {
            Kind::Bool => "0 or 1".into(),
            Kind::Int { min, max } => format!("a whole number from {min} to {max}"),
            Kind::Enum(v) => format!("one of {}", v.join(", ")),
            Kind::Str { max: Some(m) } => format!("text of at most {m} characters"),
            Kind::Str { max: None } => "any text".into(),
            Kind::Url => "a URL with its scheme (http://, https://, ftp://, tftp://)".into(),
            Kind::Host => "a host name or address (with an optional port), or a URL".into(),
        }
    }

    /// Whether `value` is allowed; `Err` says what is allowed. An empty value is always
    /// allowed: phones read it as "use the default".
    pub fn check_value(&self, value: &str) -> Result<(), String> {
        let v = value.trim();
        if v.is_empty() {
            return Ok(());
        }
        let ok = match &self.kind {
            Kind::Bool => matches!(v, "0" | "1" | "true" | "false"),
            Kind::Int { min, max } => v.parse::<i64>().is_ok_and(|n| (*min..=*max).contains(&n)),
            Kind::Enum(values) => values.iter().any(|a| a == v),
            Kind::Str { max } => max.is_none_or(|m| v.chars().count() <= m),
            Kind::Url => is_url(v),
            Kind::Host => is_url(v) || is_host(v),
        };
        if ok { Ok(()) } else { Err(self.allowed()) }
    }
}

fn is_url(v: &str) -> bool {
    ["http://", "https://", "ftp://", "tftp://"]
        .iter()
        .any(|s| v.len() > s.len() && v[..s.len()].eq_ignore_ascii_case(s))
        && !v.contains(char::is_whitespace)
}

fn is_host(v: &str) -> bool {
    v.len() <= 255
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b))
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found<'d> {
    pub entry: &'d Entry,
    /// The first index outside its range: its position among the indices and its value.
    pub bad_index: Option<(usize, u32)>,
}

/// A candidate for the near-miss search: the pattern's bytes, a mask of the characters it
/// holds (each edit changes at most two bits of it), and its entry.
#[derive(Debug, Clone)]
struct Probe {
    pattern: Box<[u8]>,
    mask: u64,
    entry: usize,
}

/// A dictionary: entries with an index by pattern and probes sorted by length.
#[derive(Debug, Clone)]
pub struct Dictionary {
    entries: Vec<Entry>,
    by_pattern: HashMap<String, usize>,
    /// Entries with a `*` segment, matched segment by segment.
    wild: Vec<usize>,
    /// Probes of every pattern without `*`, by pattern length.
    probes: Vec<Vec<Probe>>,
    /// `<device parameter>.set`.
    set_entry: Entry,
}

/// The built-in core dictionary, parsed once.
pub fn builtin() -> &'static Dictionary {
    static DICT: OnceLock<Dictionary> = OnceLock::new();
    DICT.get_or_init(|| match Dictionary::parse(BUILTIN) {
        Ok(d) => d,
        // The unit tests parse the same text: a malformed built-in never ships.
        Err(e) => panic!("built-in parameter dictionary: {e}"),
    })
}

/// A name split into its pattern (`N` for each all-digit segment) and its indices.
pub fn normalize(name: &str) -> (String, Vec<u32>) {
    let mut pattern = String::with_capacity(name.len());
    let mut indices = Vec::new();
    for (i, seg) in name.split('.').enumerate() {
        if i > 0 {
            pattern.push('.');
        }
        if !seg.is_empty() && seg.len() <= 9 && seg.bytes().all(|b| b.is_ascii_digit()) {
            pattern.push('N');
            indices.push(seg.parse().unwrap_or(0));
        } else {
            pattern.push_str(seg);
        }
    }
    (pattern, indices)
}

fn char_mask(s: &[u8]) -> u64 {
    s.iter().fold(0u64, |m, &b| {
        let bit = match b {
            b'a'..=b'z' => b - b'a',
            b'A'..=b'Z' => b - b'A' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'.' => 62,
            _ => 63,
        };
        m | 1 << bit
    })
}

/// Levenshtein distance of `a` and `b` if it is at most `max`, computed in a band of width
/// `2 * max + 1` and abandoned as soon as no cell of a row is within `max`.
pub fn distance_within(a: &[u8], b: &[u8], max: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let big = max + 1;
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![big; b.len() + 1];
    for i in 1..=a.len() {
        let lo = i.saturating_sub(max).max(1);
        let hi = (i + max).min(b.len());
        cur.fill(big);
        cur[0] = if i <= max { i } else { big };
        let mut row_min = cur[0];
        for j in lo..=hi {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let v = (prev[j - 1] + cost).min(prev[j] + 1).min(cur[j - 1] + 1);
            cur[j] = v.min(big);
            row_min = row_min.min(cur[j]);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    Some(prev[b.len()]).filter(|d| *d <= max)
}

/// Whether a segment names a model (`voice.handset.st.VVX501`: a per-model value).
fn is_model_suffix(seg: &str) -> bool {
    ["VVX", "SSIP", "SPIP", "Trio", "CCX", "SSDuo", "Edge"]
        .iter()
        .any(|p| seg.len() > p.len() && seg.starts_with(p))
}

impl Dictionary {
    /// Parses the dictionary's text form (see `dictionary.tsv`); the error names the line.
    pub fn parse(text: &str) -> Result<Dictionary, String> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let n = i + 1;
            entries.extend(parse_line(line).map_err(|e| format!("line {n}: {e}"))?);
        }
        Dictionary::from_entries(entries)
    }

    /// A dictionary of these entries; refuses a pattern given twice.
    pub fn from_entries(entries: Vec<Entry>) -> Result<Dictionary, String> {
        let mut by_pattern = HashMap::with_capacity(entries.len());
        let mut wild = Vec::new();
        let mut probes: Vec<Vec<Probe>> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            if by_pattern.insert(e.pattern.clone(), i).is_some() {
                return Err(format!("{} is listed twice", e.name));
            }
            if e.pattern.split('.').any(|s| s == "*") {
                wild.push(i);
                continue;
            }
            let len = e.pattern.len();
            if probes.len() <= len {
                probes.resize(len + 1, Vec::new());
            }
            probes[len].push(Probe {
                pattern: e.pattern.as_bytes().into(),
                mask: char_mask(e.pattern.as_bytes()),
                entry: i,
            });
        }
        Ok(Dictionary {
            entries,
            by_pattern,
            wild,
            probes,
            set_entry: Entry {
                name: "device.*.set".into(),
                pattern: "device.*.set".into(),
                ranges: Vec::new(),
                kind: Kind::Bool,
                default: Some("0".into()),
                families: Families::Ucs,
                secret: false,
                owned: false,
                source: "zt".into(),
                description: "Apply this device.* parameter (with device.set)".into(),
            },
        })
    }

    /// Every entry, in dictionary order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Entries whose name or description holds every word of `query` (case ignored), at
    /// most `limit`: those whose name holds the whole query first, then dictionary order.
    /// Entries owned by the state machine are left out when `settable` (a policy cannot
    /// set them).
    pub fn search(&self, query: &str, settable: bool, limit: usize) -> Vec<&Entry> {
        let q = query.trim().to_lowercase();
        let words: Vec<&str> = q.split_whitespace().collect();
        if words.is_empty() {
            return Vec::new();
        }
        let mut hits: Vec<(bool, &Entry)> = self
            .entries
            .iter()
            .filter(|e| !(settable && e.owned))
            .filter_map(|e| {
                let name = e.name.to_lowercase();
                let text = format!("{name} {}", e.description.to_lowercase());
                words
                    .iter()
                    .all(|w| text.contains(w))
                    .then(|| (!name.contains(&q), e))
            })
            .collect();
        // A stable sort keeps dictionary order within each group.
        hits.sort_by_key(|(rank, _)| *rank);
        hits.into_iter().take(limit).map(|(_, e)| e).collect()
    }

    /// The entry a parameter name belongs to, with its indices checked against the ranges.
    pub fn lookup(&self, name: &str) -> Option<Found<'_>> {
        let (pattern, indices) = normalize(name);
        if let Some(found) = self.lookup_pattern(&pattern, &indices) {
            return Some(found);
        }
        // `<device param>.set`: the flag that applies a known platform parameter.
        if let Some(base) = name.strip_suffix(".set")
            && base.starts_with("device.")
            && self.lookup(base).is_some()
        {
            return Some(Found {
                entry: &self.set_entry,
                bad_index: None,
            });
        }
        // A per-model value (`voice.handset.st.VVX501`) is the base parameter's.
        if let Some((base, last)) = name.rsplit_once('.')
            && is_model_suffix(last)
        {
            return self.lookup(base);
        }
        None
    }

    fn lookup_pattern(&self, pattern: &str, indices: &[u32]) -> Option<Found<'_>> {
        let i = self.by_pattern.get(pattern).copied().or_else(|| {
            let segs: Vec<&str> = pattern.split('.').collect();
            self.wild.iter().copied().find(|&w| {
                let p: Vec<&str> = self.entries[w].pattern.split('.').collect();
                p.len() == segs.len()
                    && p.iter()
                        .zip(&segs)
                        .all(|(a, b)| a == b || (*a == "*" && *b != "N"))
            })
        })?;
        let entry = &self.entries[i];
        let bad_index = indices
            .iter()
            .zip(&entry.ranges)
            .enumerate()
            .find(|(_, (v, (lo, hi)))| !(*lo..=*hi).contains(*v))
            .map(|(pos, (v, _))| (pos, *v));
        Some(Found { entry, bad_index })
    }

    /// A known name one or two edits from `name`, which the dictionary does not know, with
    /// `name`'s indices put in (`reg.1.adress` → `reg.1.address`). Differences in digits
    /// only (`customCaCert3` for `customCaCert1`) or in index segments only (the per-line
    /// `dialplan.1.x` beside `dialplan.x`) are not near misses.
    pub fn near_miss(&self, name: &str) -> Option<String> {
        let (base, suffix) = match name.strip_suffix(".set") {
            Some(b) if b.starts_with("device.") => (b, ".set"),
            _ => (name, ""),
        };
        let (pattern, indices) = normalize(base);
        let p = pattern.as_bytes();
        let mask = char_mask(p);
        let no_digits =
            |s: &[u8]| -> Vec<u8> { s.iter().copied().filter(|b| !b.is_ascii_digit()).collect() };
        let no_index = |s: &[u8]| -> Vec<u8> {
            String::from_utf8_lossy(s)
                .split('.')
                .filter(|seg| *seg != "N")
                .collect::<Vec<_>>()
                .join(".")
                .into_bytes()
        };
        let mut best: Option<(usize, usize)> = None;
        let lo = p.len().saturating_sub(2);
        let hi = (p.len() + 2).min(self.probes.len().saturating_sub(1));
        for bucket in self.probes.get(lo..=hi).unwrap_or(&[]) {
            for probe in bucket {
                if (probe.mask ^ mask).count_ones() > 4 {
                    continue;
                }
                let Some(d) = distance_within(p, &probe.pattern, 2) else {
                    continue;
                };
                if d == 0
                    || no_digits(p) == no_digits(&probe.pattern)
                    || no_index(p) == no_index(&probe.pattern)
                {
                    continue;
                }
                if best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, probe.entry));
                }
            }
        }
        let entry = &self.entries[best?.1];
        let slots = entry.pattern.split('.').filter(|s| *s == "N").count();
        let concrete = if slots == indices.len() {
            let mut it = indices.iter();
            entry
                .pattern
                .split('.')
                .map(|s| match s {
                    "N" => it.next().map_or_else(|| "N".to_string(), u32::to_string),
                    s => s.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".")
        } else {
            entry.name.clone()
        };
        Some(format!("{concrete}{suffix}"))
    }
}

/// A name being expanded: its segments so far and the ranges of its `N` segments.
type Variant = (Vec<String>, Vec<(u32, u32)>);

/// One line of the text form: possibly several entries (`{a|b}` alternatives).
fn parse_line(line: &str) -> Result<Vec<Entry>, String> {
    let cols: Vec<&str> = line.split('\t').collect();
    let [name, kind, default, family, flags, source, description] = cols[..] else {
        return Err(format!("{} columns, 7 expected", cols.len()));
    };
    let kind = parse_kind(kind)?;
    let families = match family {
        "ucs" => Families::Ucs,
        "polyos" => Families::PolyOs,
        "both" => Families::Both,
        other => return Err(format!("family `{other}` is not ucs, polyos or both")),
    };
    let mut secret = false;
    let mut owned = false;
    for f in flags.split(',').filter(|f| *f != "-") {
        match f {
            "secret" => secret = true,
            "owned" => owned = true,
            other => return Err(format!("flag `{other}` is not secret or owned")),
        }
    }
    if !["zt", "guide", "lync", "export", "fixture"].contains(&source) {
        return Err(format!("source `{source}` is not known"));
    }
    if description.trim().is_empty() || description == "-" {
        return Err(format!("{name} has no description"));
    }
    let default = (default != "-").then(|| default.to_string());
    // Expand `{a|b}` segments; turn `[A-B]` segments into `N` with their ranges.
    let mut variants: Vec<Variant> = vec![(Vec::new(), Vec::new())];
    for seg in name.split('.') {
        if seg.is_empty() {
            return Err(format!("{name}: empty segment"));
        }
        if let Some(alts) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let alts: Vec<&str> = alts.split('|').collect();
            variants = variants
                .into_iter()
                .flat_map(|(p, r)| {
                    alts.iter().map(move |a| {
                        let mut p = p.clone();
                        p.push(a.to_string());
                        (p, r.clone())
                    })
                })
                .collect();
        } else if let Some(range) = seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            let (a, b) = range
                .split_once('-')
                .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
                .filter(|(a, b)| a <= b)
                .ok_or_else(|| format!("{name}: `{seg}` is not an index range [A-B]"))?;
            for (p, r) in &mut variants {
                p.push("N".into());
                r.push((a, b));
            }
        } else if seg == "*"
            || seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
                && !seg.bytes().all(|b| b.is_ascii_digit())
        {
            for (p, _) in &mut variants {
                p.push(seg.to_string());
            }
        } else {
            return Err(format!("{name}: `{seg}` is not a name segment"));
        }
    }
    Ok(variants
        .into_iter()
        .map(|(segs, ranges)| {
            let pattern = segs.join(".");
            Entry {
                name: if name.contains('{') {
                    pattern.clone()
                } else {
                    name.to_string()
                },
                pattern,
                ranges,
                kind: kind.clone(),
                default: default.clone(),
                families,
                secret,
                owned,
                source: source.to_string(),
                description: description.to_string(),
            }
        })
        .collect())
}

fn parse_kind(kind: &str) -> Result<Kind, String> {
    let (head, arg) = kind.split_once(':').unwrap_or((kind, ""));
    Ok(match (head, arg) {
        ("bool", "") => Kind::Bool,
        ("int", "") => Kind::Int {
            min: i64::from(i32::MIN),
            max: i64::from(i32::MAX),
        },
        ("int", range) => {
            let (a, b) = range
                .split_once("..")
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                .filter(|(a, b)| a <= b)
                .ok_or_else(|| format!("`{kind}` is not int:MIN..MAX"))?;
            Kind::Int { min: a, max: b }
        }
        ("enum", values) if !values.is_empty() => {
            Kind::Enum(values.split('|').map(str::to_string).collect())
        }
        ("string", "") => Kind::Str { max: None },
        ("string", max) => Kind::Str {
            max: Some(max.parse().map_err(|_| format!("`{kind}`: bad length"))?),
        },
        ("url", "") => Kind::Url,
        ("host", "") => Kind::Host,
        _ => return Err(format!("type `{kind}` is not known")),
    })
}

#[cfg(test)]
mod tests;
