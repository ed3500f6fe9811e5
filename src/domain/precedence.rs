//! The one precedence rule: which value of a parameter a device ends up with, and where it
//! comes from (docs/design.md, "Precedence"). Highest first:
//!
//! 0. the phone's own override files (`<mac>-phone.cfg`, `-web.cfg`, `-system.cfg`): shown
//!    on top, never served — the phone applies them itself, over everything we send;
//! 1. pending changes of the provisioning state (credentials, server, scheme, CA, and every
//!    `device.*` value not yet confirmed), with `device.set`;
//! 2. the device: its vendor extensions and lines, then its own policy;
//! 3. its groups, higher priority first (equal priorities: the oldest group first);
//! 4. its site;
//! 5. the account policy;
//! 6. the profile's fields;
//! 7. the profile's files, in CONFIG_FILES order;
//! 8. zerotouch's own defaults (the serial tag, the CA), below everything an admin set.
//!
//! A phone reads CONFIG_FILES left to right and the first file that sets a parameter wins;
//! the generated file comes first, so levels 1–6 reach the phone through it and win over the
//! profile's files. Callers gather the layers they have, in this order
//! (`polycom::render::DeviceView::layers`, `provstate::desired`), and `resolve` decides.
//! Rendering, effective settings, `render --explain`, the override report, lint and export
//! all read one `Resolution`, so none of them can disagree about who wins.

use std::collections::BTreeMap;

use serde::Serialize;

use super::provstate::Source;

/// A precedence level; a lower level wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// The phone's own override files.
    PhoneOverride,
    /// Pending changes of the provisioning state.
    Pending,
    /// The device's extensions, lines and own policy.
    Device,
    /// A device group (one layer per group, in priority order).
    Group,
    Site,
    Account,
    /// The profile's fields.
    Profile,
    /// One of the profile's files (one layer per file, in CONFIG_FILES order).
    ProfileFile,
    /// zerotouch's own defaults.
    Server,
}

/// One value a layer gives a parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    pub value: String,
    pub level: Level,
    /// Where it comes from, as shown to admins.
    pub source: Source,
    /// Which group, site, file or mechanism: `group lobby (priority 10)`, `site hq`,
    /// `Auto-Sync`, `site.cfg`; empty when the source says it all.
    pub detail: String,
    /// The line of the file that sets it (files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// The values one level gives, in the order it gives them (within a layer the first wins,
/// as within a file a phone keeps the first value it reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub level: Level,
    entries: Vec<(String, Candidate)>,
}

impl Layer {
    pub fn new(level: Level) -> Layer {
        Layer {
            level,
            entries: Vec::new(),
        }
    }

    /// Adds `name = value` from `source` (with `detail`).
    pub fn push(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        source: Source,
        detail: impl Into<String>,
    ) {
        self.entries.push((
            name.into(),
            Candidate {
                value: value.into(),
                level: self.level,
                source,
                detail: detail.into(),
                line: None,
            },
        ));
    }

    /// Like `push`, for a value read from a file at `line`.
    pub fn push_at(
        &mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        source: Source,
        detail: impl Into<String>,
        line: u32,
    ) {
        self.push(name, value, source, detail);
        if let Some((_, c)) = self.entries.last_mut() {
            c.line = Some(line);
        }
    }

    /// Like `push`, but an empty value means "not set" and adds nothing (a form field left
    /// empty; a file's empty attribute is a value and goes through `push`).
    pub fn push_set(
        &mut self,
        name: impl Into<String>,
        value: &str,
        source: Source,
        detail: impl Into<String>,
    ) {
        if !value.is_empty() {
            self.push(name, value, source, detail);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the layer's entries come from `detail` (a layer per group, site or file).
    pub fn detail_is(&self, detail: &str) -> bool {
        self.entries.first().is_none_or(|(_, c)| c.detail == detail)
    }

    /// Keeps only the entries whose name `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.entries.retain(|(n, _)| keep(n));
    }
}

/// Every parameter with its candidates, the winner first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    params: BTreeMap<String, Vec<Candidate>>,
}

impl Resolution {
    /// The value that wins for `name`.
    pub fn winner(&self, name: &str) -> Option<&Candidate> {
        self.params.get(name).and_then(|c| c.first())
    }

    /// The values `name` would get from lower levels, hidden by the winner.
    pub fn shadowed(&self, name: &str) -> &[Candidate] {
        self.params
            .get(name)
            .map_or(&[], |c| c.get(1..).unwrap_or(&[]))
    }

    /// Every parameter's winner, by name.
    pub fn winners(&self) -> impl Iterator<Item = (&str, &Candidate)> {
        self.params
            .iter()
            .filter_map(|(n, c)| c.first().map(|w| (n.as_str(), w)))
    }

    /// Every parameter's winner, by name, owned.
    pub fn into_winners(self) -> impl Iterator<Item = (String, Candidate)> {
        self.params
            .into_iter()
            .filter_map(|(n, c)| c.into_iter().next().map(|w| (n, w)))
    }

    /// The winners below `level`: what the server side sets when the phone's overrides are
    /// left out.
    pub fn without(&self, level: Level) -> Resolution {
        Resolution {
            params: self
                .params
                .iter()
                .filter_map(|(n, c)| {
                    let rest: Vec<Candidate> =
                        c.iter().filter(|c| c.level != level).cloned().collect();
                    (!rest.is_empty()).then(|| (n.clone(), rest))
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.params.len()
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }
}

/// Decides every parameter: `layers` come highest first (their levels never go up — a
/// caller giving them out of order is a bug, caught in debug builds); the first value a
/// parameter gets wins, the others are kept as shadowed.
pub fn resolve(layers: impl IntoIterator<Item = Layer>) -> Resolution {
    let mut params: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    // The layer that gave each parameter its last candidate: within one layer only the
    // first value counts (a later duplicate is no lower level's value).
    let mut from: BTreeMap<String, usize> = BTreeMap::new();
    let mut last = Level::PhoneOverride;
    for (i, layer) in layers.into_iter().enumerate() {
        debug_assert!(layer.level >= last, "{:?} after {last:?}", layer.level);
        last = layer.level;
        for (name, candidate) in layer.entries {
            if from.get(&name) == Some(&i) {
                continue;
            }
            from.insert(name.clone(), i);
            params.entry(name).or_default().push(candidate);
        }
    }
    Resolution { params }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(level: Level, source: Source, detail: &str, values: &[(&str, &str)]) -> Layer {
        let mut l = Layer::new(level);
        for (n, v) in values {
            l.push(*n, *v, source, detail);
        }
        l
    }

    #[test]
    fn the_highest_level_wins_and_the_others_are_shadowed() {
        let r = resolve([
            layer(
                Level::Device,
                Source::Device,
                "",
                &[("lcl.ml.lang", "German_Germany")],
            ),
            layer(
                Level::Group,
                Source::Group,
                "group lobby (priority 10)",
                &[("lcl.ml.lang", "French_France"), ("x.y", "1")],
            ),
            layer(Level::Site, Source::Site, "site hq", &[("x.y", "2")]),
            layer(
                Level::ProfileFile,
                Source::ProfileFile,
                "site.cfg",
                &[("lcl.ml.lang", "English_United_States")],
            ),
        ]);
        let w = r.winner("lcl.ml.lang").expect("set");
        assert_eq!(
            (w.value.as_str(), w.source),
            ("German_Germany", Source::Device)
        );
        assert_eq!(
            r.shadowed("lcl.ml.lang")
                .iter()
                .map(|c| c.value.as_str())
                .collect::<Vec<_>>(),
            ["French_France", "English_United_States"]
        );
        let x = r.winner("x.y").expect("set");
        assert_eq!(
            (x.value.as_str(), x.detail.as_str()),
            ("1", "group lobby (priority 10)")
        );
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn within_a_layer_the_first_value_counts_and_empty_fields_set_nothing() {
        let mut l = Layer::new(Level::ProfileFile);
        l.push("a.b", "first", Source::ProfileFile, "f.cfg");
        l.push("a.b", "second", Source::ProfileFile, "f.cfg");
        l.push_set("c.d", "", Source::ProfileFile, "f.cfg");
        l.push("e.f", "", Source::ProfileFile, "f.cfg");
        let r = resolve([l]);
        assert_eq!(r.winner("a.b").map(|c| c.value.as_str()), Some("first"));
        assert!(r.shadowed("a.b").is_empty());
        assert!(
            r.winner("c.d").is_none(),
            "an empty form field is not a value"
        );
        assert_eq!(
            r.winner("e.f").map(|c| c.value.as_str()),
            Some(""),
            "an empty attribute is"
        );
    }

    #[test]
    fn the_phone_overrides_win_and_without_them_the_server_value_shows() {
        let r = resolve([
            layer(
                Level::PhoneOverride,
                Source::PhoneOverride,
                "0004f2000001-phone.cfg",
                &[("reg.1.server.1.address", "rogue.example")],
            ),
            layer(
                Level::Device,
                Source::Device,
                "",
                &[("reg.1.server.1.address", "sip.example.com")],
            ),
        ]);
        assert_eq!(
            r.winner("reg.1.server.1.address").map(|c| c.source),
            Some(Source::PhoneOverride)
        );
        let server = r.without(Level::PhoneOverride);
        assert_eq!(
            server
                .winner("reg.1.server.1.address")
                .map(|c| c.value.as_str()),
            Some("sip.example.com")
        );
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "after")]
    fn layers_out_of_order_are_a_bug() {
        resolve([
            layer(Level::Site, Source::Site, "", &[]),
            layer(Level::Device, Source::Device, "", &[]),
        ]);
    }
}
