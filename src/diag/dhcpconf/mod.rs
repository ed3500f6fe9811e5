//! DHCP server configuration files: which scopes set the options that steer phones (66,
//! 160, 161, 43, 150) and which classes match the phones' vendor class (60).
//!
//! Four dialects, each in its own file: ISC dhcpd (`isc`), Kea JSON (`kea`), dnsmasq
//! (`dnsmasq`) and a Windows `netsh dhcp server dump` (`windows`). The dialect of a file is
//! recognised from its content; included files (`include`, `<?include?>`, `conf-file=`,
//! `conf-dir=`) are read in the dialect of the file that names them, relative to its
//! directory, with a depth limit and no file read twice. Every option found keeps its
//! file and line. Reading is forgiving: a construct we do not understand becomes a note,
//! never a failure, since the point is to show an admin what their files say.

pub mod dnsmasq;
pub mod isc;
pub mod kea;
pub mod windows;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The option codes this analysis reports (60 stands for class matches on the vendor class).
pub const PROVISIONING_CODES: &[u8] = &[66, 160, 161, 43, 150, 60];

/// A DHCP server configuration dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    Isc,
    Kea,
    Dnsmasq,
    Windows,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Isc => "isc",
            Dialect::Kea => "kea",
            Dialect::Dnsmasq => "dnsmasq",
            Dialect::Windows => "windows",
        }
    }
}

/// One provisioning option set in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfOption {
    pub file: String,
    /// 1-based line (0 when the line could not be told).
    pub line: u32,
    pub dialect: Dialect,
    /// Where it applies: `global`, `subnet 10.0.20.0/24`, `class "polycom"`, `host phone1`,
    /// nested scopes joined with ` > `.
    pub scope: String,
    pub code: u8,
    /// The option's name as written in the file (or its number).
    pub name: String,
    /// The value, decoded to text where it was written as hex.
    pub value: String,
}

impl ConfOption {
    /// `file:line`, as shown in findings.
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}", self.file, self.line)
        }
    }
}

/// What the analysis of some files found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfReport {
    /// Every file read, includes too, with its dialect.
    pub files: Vec<(String, Dialect)>,
    pub options: Vec<ConfOption>,
    /// Includes that could not be read, constructs not understood.
    pub notes: Vec<String>,
}

/// Recognises the dialect of a file from its content.
pub fn detect(text: &str) -> Dialect {
    let lines = || {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
    };
    if text.contains("\"Dhcp4\"") {
        return Dialect::Kea;
    }
    if lines().any(|l| l.to_ascii_lowercase().starts_with("dhcp server ")) {
        return Dialect::Windows;
    }
    let dnsmasq_keys = [
        "dhcp-range",
        "dhcp-option",
        "dhcp-option-force",
        "conf-file",
        "conf-dir",
        "dhcp-host",
        "dhcp-vendorclass",
        "dhcp-boot",
        "interface",
        "domain",
        "port",
        "no-resolv",
        "server",
    ];
    if lines().any(|l| {
        let key = l
            .trim_start_matches("--")
            .split(['=', ' '])
            .next()
            .unwrap_or("");
        dnsmasq_keys.contains(&key) && (l.contains('=') || !l.contains(' ')) && !l.ends_with(';')
    }) {
        return Dialect::Dnsmasq;
    }
    Dialect::Isc
}

/// Reads a file as text: UTF-8, or UTF-16LE with a byte-order mark (what `netsh ... dump >
/// file` writes from PowerShell).
pub fn read_text(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(decode_text(&bytes))
}

/// Bytes to text as `read_text` does.
pub fn decode_text(bytes: &[u8]) -> String {
    if let Some(rest) = bytes.strip_prefix(&[0xff, 0xfe]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

/// Reads files and everything they include; files given on the command line keep their
/// order.
pub fn analyze(paths: &[PathBuf]) -> ConfReport {
    let mut reader = Reader {
        report: ConfReport::default(),
        seen: Vec::new(),
        isc: isc::State::default(),
        follow: true,
    };
    for p in paths {
        reader.read(p, None, 0);
    }
    reader.report
}

/// Analyses one text in a given dialect (for tests and the console's pasted or uploaded
/// files). Its includes are not followed — the text came from elsewhere, and a path in it
/// must not read this server's files —; each is noted instead.
pub fn analyze_text(file: &str, text: &str, dialect: Dialect) -> ConfReport {
    let mut reader = Reader {
        report: ConfReport::default(),
        seen: Vec::new(),
        isc: isc::State::default(),
        follow: false,
    };
    reader.parse(file, Path::new("."), text, dialect, 0);
    reader.report
}

/// Analyses texts an admin pasted or uploaded, each `(name, text)` in the dialect its
/// content shows; as in `analyze_text`, includes are noted, not followed.
pub fn analyze_texts(texts: &[(String, String)]) -> ConfReport {
    let mut reader = Reader {
        report: ConfReport::default(),
        seen: Vec::new(),
        isc: isc::State::default(),
        follow: false,
    };
    for (name, text) in texts {
        reader.parse(name, Path::new("."), text, detect(text), 0);
    }
    reader.report
}

/// Walks files and includes.
pub(crate) struct Reader {
    report: ConfReport,
    seen: Vec<PathBuf>,
    /// ISC declarations hold across includes.
    isc: isc::State,
    /// Whether includes are read (files named on the command line) or only noted (text).
    follow: bool,
}

const MAX_DEPTH: usize = 8;

impl Reader {
    fn read(&mut self, path: &Path, dialect: Option<Dialect>, depth: usize) {
        if depth > MAX_DEPTH {
            self.note(format!(
                "{}: includes nested deeper than {MAX_DEPTH}; not read",
                path.display()
            ));
            return;
        }
        let canonical = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if self.seen.contains(&canonical) {
            return;
        }
        self.seen.push(canonical);
        let text = match read_text(path) {
            Ok(t) => t,
            Err(e) => {
                self.note(format!("{}: cannot read: {e}", path.display()));
                return;
            }
        };
        let dialect = dialect.unwrap_or_else(|| detect(&text));
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        self.parse(&path.display().to_string(), &dir, &text, dialect, depth);
    }

    fn parse(&mut self, file: &str, dir: &Path, text: &str, dialect: Dialect, depth: usize) {
        self.report.files.push((file.to_string(), dialect));
        let includes = match dialect {
            Dialect::Isc => isc::parse_with(file, text, &mut self.report, &mut self.isc),
            Dialect::Kea => {
                kea::parse_in(file, self.follow.then_some(dir), text, &mut self.report);
                Vec::new()
            }
            Dialect::Dnsmasq => dnsmasq::parse(file, text, &mut self.report),
            Dialect::Windows => windows::parse(file, text, &mut self.report),
        };
        for inc in includes {
            if !self.follow {
                self.note(format!(
                    "{file}: include `{}` not followed (a pasted or uploaded text); add that file too",
                    inc.path
                ));
                continue;
            }
            let path = if Path::new(&inc.path).is_absolute() {
                PathBuf::from(&inc.path)
            } else {
                dir.join(&inc.path)
            };
            if inc.directory {
                self.read_dir(&path, &inc.extensions, dialect, depth + 1);
            } else {
                self.read(&path, Some(dialect), depth + 1);
            }
        }
    }

    fn read_dir(&mut self, dir: &Path, extensions: &[String], dialect: Dialect, depth: usize) {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.note(format!("{}: cannot read directory: {e}", dir.display()));
                return;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .filter(|p| {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // dnsmasq skips editor backups and dotfiles in conf-dir.
                !name.starts_with('.')
                    && !name.ends_with('~')
                    && !name.starts_with('#')
                    && (extensions.is_empty()
                        || extensions.iter().any(|x| name.ends_with(x.as_str())))
            })
            .collect();
        files.sort();
        for f in files {
            self.read(&f, Some(dialect), depth);
        }
    }

    fn note(&mut self, text: String) {
        self.report.notes.push(text);
    }
}

/// An include a dialect parser found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    pub path: String,
    /// A directory of files (dnsmasq `conf-dir`).
    pub directory: bool,
    /// For a directory: only files ending so (empty = all).
    pub extensions: Vec<String>,
}

impl Include {
    pub fn file(path: impl Into<String>) -> Include {
        Include {
            path: path.into(),
            directory: false,
            extensions: Vec::new(),
        }
    }
}

/// Decodes `aa:bb:cc` or `aabbcc` (or `0xaabbcc`) hex to bytes.
pub fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if t.contains(':') || t.contains(' ') {
        let parts: Vec<&str> = t.split([':', ' ']).filter(|p| !p.is_empty()).collect();
        if parts.is_empty() || parts.iter().any(|p| p.is_empty() || p.len() > 2) {
            return None;
        }
        return parts
            .iter()
            .map(|p| u8::from_str_radix(p, 16).ok())
            .collect();
    }
    if t.is_empty() || !t.len().is_multiple_of(2) || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16).ok())
        .collect()
}

/// Shows hex-encoded bytes as the option decoder would (text for string options).
pub fn hex_value(code: u8, bytes: &[u8]) -> String {
    crate::diag::options::decode(code, bytes).value
}

/// Whether a value written without quotes looks like colon hex (`68:74:74:70`), which ISC
/// and dnsmasq accept for string options.
pub fn looks_like_colon_hex(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| (1..=2).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialects_are_recognised() {
        assert_eq!(detect("{ \"Dhcp4\": {} }"), Dialect::Kea);
        assert_eq!(
            detect("# x\ndhcp-range=10.0.0.10,10.0.0.20\n"),
            Dialect::Dnsmasq
        );
        assert_eq!(
            detect("Dhcp Server \\\\dc1 set optionvalue 66 STRING \"x\"\n"),
            Dialect::Windows
        );
        assert_eq!(
            detect("subnet 10.0.0.0 netmask 255.255.255.0 { }\n"),
            Dialect::Isc
        );
        assert_eq!(detect("option domain-name \"x\";\n"), Dialect::Isc);
    }

    #[test]
    fn hex_values_decode_in_every_spelling() {
        assert_eq!(parse_hex("68:74:74:70"), Some(b"http".to_vec()));
        assert_eq!(parse_hex("0x68747470"), Some(b"http".to_vec()));
        assert_eq!(parse_hex("68 74 74 70"), Some(b"http".to_vec()));
        assert_eq!(parse_hex("6874747"), None);
        assert_eq!(parse_hex("zz"), None);
        assert!(looks_like_colon_hex("0a:0b"));
        assert!(!looks_like_colon_hex("10.0.0.1"));
    }

    proptest::proptest! {
        #[test]
        fn any_text_in_any_dialect_never_panics(text in "\\PC{0,400}") {
            for d in [Dialect::Isc, Dialect::Kea, Dialect::Dnsmasq, Dialect::Windows] {
                let _ = analyze_text("fuzz.conf", &text, d);
            }
        }

        #[test]
        fn config_like_text_never_panics(
            lines in proptest::collection::vec(
                proptest::sample::select(vec![
                    "option tftp-server-name \"x\";", "subnet 10.0.0.0 netmask 255.255.255.0 {",
                    "}", "{", "\"", "#", "dhcp-option=tag:a,160,\"h\"", "dhcp-option=66,aa:bb",
                    "Dhcp Server \\\\x Scope 10.0.0.0 set optionvalue 43 BINARY 0102",
                    "{ \"Dhcp4\": { \"option-data\": [ { \"code\": 66, \"data\": \"x\" } ] } }",
                    "<?include \"nope\"?>", "class \"c\" { match if option vendor-class-identifier = \"P\";",
                    "option x code 160 = text;", "/*", "*/", ",", ";",
                ]),
                0..40,
            ),
        ) {
            let text = lines.join("\n");
            for d in [Dialect::Isc, Dialect::Kea, Dialect::Dnsmasq, Dialect::Windows] {
                let _ = analyze_text("fuzz.conf", &text, d);
            }
        }
    }

    #[test]
    fn utf16_dumps_are_read() {
        let mut bytes = vec![0xff, 0xfe];
        for u in "Dhcp Server".encode_utf16() {
            bytes.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(decode_text(&bytes), "Dhcp Server");
    }

    #[test]
    fn includes_are_followed_relative_to_the_including_file_and_only_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("dhcpd.conf"),
            "include \"phones.conf\";\ninclude \"phones.conf\";\ninclude \"missing.conf\";\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("phones.conf"),
            "option tftp-server-name \"10.0.0.5\";\ninclude \"dhcpd.conf\";\n",
        )
        .expect("write");
        let report = analyze(&[dir.path().join("dhcpd.conf")]);
        assert_eq!(report.options.len(), 1, "{report:?}");
        assert!(report.options[0].file.ends_with("phones.conf"));
        assert_eq!(report.options[0].line, 1);
        assert!(
            report.notes.iter().any(|n| n.contains("missing.conf")),
            "{report:?}"
        );
    }
}
