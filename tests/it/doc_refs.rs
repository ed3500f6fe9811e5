//! Every reference to a document points at one that exists, in this repository, with the
//! section it names. A source scan over every `.rs` under `src/`, `tests/` and `benches/`,
//! the migrations (`src/**/*.sql`), every `.md` under `docs/` and `README.md` checks:
//!
//! - a path ending in `.md` (`docs/design.md`, `README.md`, a bare `performance.md`) names a
//!   file of the repository, never one outside it (`../`);
//! - `docs/<file>.md, "<Heading>"` names a heading of that file (with or without its
//!   number: `"Precedence"` and `"5. Precedence"` both name `## 5. Precedence`);
//! - `§5` or `§6.4` names a numbered heading of the document named before it on the same
//!   line (or, failing that, on the comment lines just above it; in a `.md` file, the file
//!   itself). Sections of external standards (`RFC 9112 §2.2`) are not checked;
//! - no citation of documents kept outside the repository remains: `DESIGN §n`, `DESIGN.md`
//!   and seed file numbers (`seed 000`) — cite `docs/design.md` and name a source document
//!   by what it is ("the ZTP guide").
//!
//! A failure names file, line and the reference.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// One reference that does not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bad {
    file: String,
    line: usize,
    /// The reference as written.
    cited: String,
    why: String,
}

impl std::fmt::Display for Bad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: `{}`: {}",
            self.file, self.line, self.cited, self.why
        )
    }
}

/// The headings of a Markdown file: their texts, and the numbers of numbered ones.
#[derive(Debug, Default)]
struct Headings {
    texts: BTreeSet<String>,
    numbers: BTreeSet<String>,
}

impl Headings {
    fn parse(markdown: &str) -> Headings {
        let mut h = Headings::default();
        let mut fenced = false;
        for line in markdown.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            let Some(text) = (!fenced).then(|| heading_text(line)).flatten() else {
                continue;
            };
            h.texts.insert(text.to_string());
            if let Some((number, title)) = split_number(text) {
                h.numbers.insert(number.to_string());
                h.texts.insert(title.to_string());
            }
        }
        h
    }
}

/// The text of a Markdown heading line (`## 5. Precedence` → `5. Precedence`).
fn heading_text(line: &str) -> Option<&str> {
    let hashes = line.bytes().take_while(|b| *b == b'#').count();
    if hashes == 0 || hashes > 6 {
        return None;
    }
    line[hashes..].strip_prefix(' ').map(str::trim)
}

/// `5. Precedence` → (`5`, `Precedence`); `6.4 Enrolment` → (`6.4`, `Enrolment`).
fn split_number(text: &str) -> Option<(&str, &str)> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let number = text[..end].trim_end_matches('.');
    let rest = text[end..].trim_start();
    (!number.is_empty() && number.starts_with(|c: char| c.is_ascii_digit()) && end > 0)
        .then_some((number, rest))
}

/// What the scan knows of the repository's documents.
trait Docs {
    /// The headings of the repository file at `path` (relative to the root), if it exists.
    fn headings(&self, path: &str) -> Option<&Headings>;
}

/// The documents of this repository (`docs/*.md`, `README.md`, `CHANGELOG.md`), read from
/// disk once.
struct RepoDocs {
    cache: std::collections::BTreeMap<String, Option<Headings>>,
}

impl RepoDocs {
    fn new(root: &Path) -> RepoDocs {
        let mut cache = std::collections::BTreeMap::new();
        let mut files = Vec::new();
        walk(&root.join("docs"), &["md"], &mut files);
        files.extend(["README.md", "CHANGELOG.md"].map(|f| root.join(f)));
        for f in files {
            let rel = relative(root, &f);
            let text = std::fs::read_to_string(&f).ok();
            cache.insert(rel, text.as_deref().map(Headings::parse));
        }
        RepoDocs { cache }
    }
}

impl Docs for RepoDocs {
    fn headings(&self, path: &str) -> Option<&Headings> {
        self.cache.get(path).and_then(Option::as_ref)
    }
}

/// A document a reference names, where it appears on its line.
#[derive(Debug, Clone)]
enum Named {
    /// A file of the repository (path relative to the root), or `None` when there is none.
    File(Option<String>),
    /// A document outside the repository that is cited on purpose (an RFC).
    External,
    /// A legacy citation, already reported.
    Legacy,
}

/// Scans one file's text; `path` is relative to the repository root.
fn scan(path: &str, text: &str, docs: &dyn Docs) -> Vec<Bad> {
    let mut out = Vec::new();
    let is_md = path.ends_with(".md");
    // The document named last in the current run of comment lines.
    let mut block: Option<Named> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let bad = |cited: &str, why: String| Bad {
            file: path.to_string(),
            line: n,
            cited: cited.to_string(),
            why,
        };
        let trimmed = line.trim_start();
        let comment = is_md
            || (path.ends_with(".rs") && trimmed.starts_with("//"))
            || (path.ends_with(".sql") && trimmed.starts_with("--"));
        if !comment {
            block = None;
        }
        for cited in legacy_citations(line) {
            out.push(bad(
                &cited,
                "cites a document kept outside this repository: cite docs/design.md, and name \
                 source documents by what they are"
                    .into(),
            ));
        }
        // Documents named on this line, by position.
        let mut named: Vec<(usize, Named)> = Vec::new();
        for (at, token) in md_paths(line) {
            let doc = resolve(path, &token, docs);
            match &doc {
                Named::File(None) if token.contains("../shared/") => {}
                Named::File(None) => {
                    out.push(bad(&token, "no such file in this repository".into()))
                }
                Named::File(Some(file)) => {
                    if let Some(heading) = quoted_heading(&line[at + token.len()..]) {
                        let known = docs
                            .headings(file)
                            .is_some_and(|h| h.texts.contains(heading));
                        if !known {
                            out.push(bad(
                                &format!("{token}, \"{heading}\""),
                                format!("{file} has no heading `{heading}`"),
                            ));
                        }
                    }
                }
                Named::External | Named::Legacy => {}
            }
            named.push((at, doc));
        }
        for at in line.match_indices("RFC ").map(|(at, _)| at) {
            named.push((at, Named::External));
        }
        for at in line.match_indices("DESIGN").map(|(at, _)| at) {
            named.push((at, Named::Legacy));
        }
        named.sort_by_key(|(at, _)| *at);
        for (at, section) in sections(line) {
            let doc = named
                .iter()
                .rev()
                .find(|(pos, _)| *pos < at)
                .map(|(_, d)| d.clone())
                .or_else(|| block.clone())
                .or_else(|| is_md.then(|| Named::File(Some(path.to_string()))));
            match doc {
                None => out.push(bad(
                    &format!("§{section}"),
                    "names no document: write the document before it (docs/design.md §n)".into(),
                )),
                Some(Named::File(Some(file))) => {
                    let known = docs
                        .headings(&file)
                        .is_some_and(|h| h.numbers.contains(&section));
                    if !known {
                        out.push(bad(
                            &format!("§{section}"),
                            format!("{file} has no section {section}"),
                        ));
                    }
                }
                Some(Named::File(None) | Named::External | Named::Legacy) => {}
            }
        }
        // In a comment, a document named on one line is still meant on the next; in a
        // Markdown file a bare `§` is the file's own.
        if let (false, Some((_, last))) = (is_md, named.last()) {
            block = Some(last.clone());
        }
    }
    out
}

/// Citations of documents kept outside the repository: `DESIGN §6`, `DESIGN 6`,
/// `DESIGN.md`, `seed 000`, `seeds 001`, `../shared/…`.
fn legacy_citations(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in line.match_indices("DESIGN") {
        let rest = &line[at + "DESIGN".len()..];
        let cited = if let Some(r) = rest.strip_prefix(" §") {
            format!("DESIGN §{}", leading_number(r))
        } else if rest.starts_with(".md") {
            "DESIGN.md".to_string()
        } else if rest
            .strip_prefix(' ')
            .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        {
            format!("DESIGN {}", leading_number(&rest[1..]))
        } else {
            continue;
        };
        out.push(cited);
    }
    let lower = line.to_ascii_lowercase();
    for word in ["seed ", "seeds "] {
        for (at, _) in lower.match_indices(word) {
            let number = leading_number(&line[at + word.len()..]);
            let preceded = at > 0 && lower.as_bytes()[at - 1].is_ascii_alphabetic();
            if number.len() == 3 && number.starts_with('0') && !preceded {
                out.push(format!("{}{number}", &line[at..at + word.len()]));
            }
        }
    }
    // Documents beside the repository (fixtures there are test data, not citations).
    for (at, _) in line.match_indices("../shared/") {
        let end = line[at..]
            .find(|c: char| c.is_whitespace() || "`)\"',:;".contains(c))
            .map_or(line.len(), |e| at + e);
        let cited = line[at..end].trim_end_matches('.');
        if cited.ends_with(".md") {
            out.push(cited.to_string());
        }
    }
    out
}

/// The digits and dots at the start of `s`, without a final dot (`6.4` of `6.4.`).
fn leading_number(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    s[..end].trim_end_matches('.')
}

/// Every path ending in `.md` on the line, with its byte offset.
fn md_paths(line: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (at, _) in line.match_indices(".md") {
        let after = line[at + 3..].chars().next();
        if after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let start = line[..at]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "_./-".contains(c)))
            .map_or(0, |p| {
                p + line[p..].chars().next().map_or(1, char::len_utf8)
            });
        if start < at {
            out.push((start, line[start..at + 3].to_string()));
        }
    }
    out
}

/// The document a `.md` path names: a repository file, or none.
fn resolve(from: &str, token: &str, docs: &dyn Docs) -> Named {
    if token == "DESIGN.md" {
        return Named::Legacy;
    }
    if token.contains("..") {
        return Named::File(None);
    }
    let token = token.trim_start_matches("./");
    let dir = Path::new(from).parent().unwrap_or(Path::new(""));
    let candidates = [
        token.to_string(),
        format!("docs/{token}"),
        relative(Path::new(""), &dir.join(token)),
    ];
    Named::File(candidates.into_iter().find(|c| docs.headings(c).is_some()))
}

/// `, "Heading"` right after a document's path: the heading it names.
fn quoted_heading(after: &str) -> Option<&str> {
    let rest = after.strip_prefix(", \"")?;
    rest.find('"').map(|end| &rest[..end])
}

/// Every `§n` or `§n.m` on the line, with its byte offset and its number (a `§` that no
/// number follows is prose, not a reference).
fn sections(line: &str) -> Vec<(usize, String)> {
    line.match_indices('§')
        .map(|(at, s)| (at, leading_number(&line[at + s.len()..]).to_string()))
        .filter(|(_, n)| !n.is_empty())
        .collect()
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

fn walk(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, exts, out);
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| exts.contains(&x))
        {
            out.push(p);
        }
    }
}

/// Every file the scan reads, relative to the root.
fn scanned_files(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    walk(&root.join("src"), &["rs", "sql"], &mut files);
    walk(&root.join("tests"), &["rs"], &mut files);
    walk(&root.join("benches"), &["rs"], &mut files);
    walk(&root.join("docs"), &["md"], &mut files);
    files.push(root.join("README.md"));
    let mut out: Vec<String> = files.iter().map(|f| relative(root, f)).collect();
    // This file spells out the citations it looks for.
    out.retain(|f| f != "tests/it/doc_refs.rs");
    out.sort();
    out
}

#[test]
fn every_document_reference_names_a_file_and_section_of_this_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = RepoDocs::new(root);
    let mut found = Vec::new();
    for file in scanned_files(root) {
        let text = std::fs::read_to_string(root.join(&file)).expect("read");
        found.extend(scan(&file, &text, &docs));
    }
    assert!(
        found.is_empty(),
        "references that do not resolve:\n{}",
        found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Documents for the self-test: one with numbered sections.
struct FakeDocs(Vec<(&'static str, Headings)>);

impl Docs for FakeDocs {
    fn headings(&self, path: &str) -> Option<&Headings> {
        self.0.iter().find(|(p, _)| *p == path).map(|(_, h)| h)
    }
}

fn fake_docs() -> FakeDocs {
    FakeDocs(vec![(
        "docs/design.md",
        Headings::parse("# Design\n\n## 5. Precedence\n\n## 6. State\n\n### 6.4 Enrolment\n"),
    )])
}

fn cited(file: &str, text: &str) -> Vec<String> {
    scan(file, text, &fake_docs())
        .into_iter()
        .map(|b| format!("{}:{}", b.line, b.cited))
        .collect()
}

#[test]
fn the_scan_accepts_references_that_resolve() {
    let text = [
        "//! The rule (docs/design.md §5, and §6.4 for devices); see docs/design.md, \"Precedence\".",
        "/// Empty lines first (RFC 9112 §2.2).",
        "//! As `docs/design.md, \"6. State\"` says, and",
        "//! then §6 of the same document, two lines on.",
    ]
    .join("\n");
    assert_eq!(cited("src/x.rs", &text), Vec::<String>::new());
    assert_eq!(
        cited("docs/design.md", "See §5 above."),
        Vec::<String>::new()
    );
}

#[test]
fn the_scan_catches_references_that_do_not_resolve() {
    let legacy = ["DESIGN", " §6"].concat();
    let seed = ["seed", " 000"].concat();
    let shared = ["../shared", "/polycom.md"].concat();
    let text = [
        "//! The rule (docs/design.md §9).".to_string(),
        "//! See docs/design.md, \"Limits\" and docs/nowhere.md.".to_string(),
        format!("//! Old ({legacy}), ({seed}), {shared}."),
        "let x = 1; // §5 of nothing".to_string(),
    ]
    .join("\n");
    assert_eq!(
        cited("src/x.rs", &text),
        vec![
            "1:§9".to_string(),
            "2:docs/design.md, \"Limits\"".to_string(),
            "2:docs/nowhere.md".to_string(),
            format!("3:{legacy}"),
            format!("3:{seed}"),
            format!("3:{shared}"),
            "4:§5".to_string(),
        ]
    );
}
