//! Device families and the model tokens phones use.
//!
//! A family is what one UC Software release train covers (VVX, Trio, CCX, Edge, …); a
//! profile names one software version per family. The master file then carries
//! `APP_FILE_PATH_<MODEL>` for every model of that family. Model tokens are the User-Agent
//! model without its underscore (`VVX_410` → `VVX410`), the form the master file's
//! per-model attributes use. The lists are facts from Polycom's release notes; correct them
//! here, nowhere else.

use std::fmt;

/// A device family: one firmware release train, one parameter table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Family {
    SoundPoint,
    SoundStation,
    Vvx,
    Trio,
    Ccx,
    Edge,
    /// Poly OS / VideoOS video devices (G7500, Studio X). Own parameter table.
    PolyOs,
}

impl Family {
    pub const ALL: [Family; 7] = [
        Family::Vvx,
        Family::Trio,
        Family::Ccx,
        Family::Edge,
        Family::SoundPoint,
        Family::SoundStation,
        Family::PolyOs,
    ];

    /// The name used in the CLI, the database and the UI.
    pub fn name(self) -> &'static str {
        match self {
            Family::SoundPoint => "SoundPoint",
            Family::SoundStation => "SoundStation",
            Family::Vvx => "VVX",
            Family::Trio => "Trio",
            Family::Ccx => "CCX",
            Family::Edge => "Edge",
            Family::PolyOs => "PolyOS",
        }
    }

    pub fn from_name(s: &str) -> Option<Family> {
        Family::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s))
    }

    /// UC Software families (one parameter table); Poly OS has its own.
    pub fn is_ucs(self) -> bool {
        self != Family::PolyOs
    }

    /// Model tokens of the family, as used in `APP_FILE_PATH_<MODEL>`.
    pub fn models(self) -> &'static [&'static str] {
        match self {
            Family::SoundPoint => &[
                "SPIP321", "SPIP331", "SPIP335", "SPIP450", "SPIP550", "SPIP560", "SPIP650",
                "SPIP670",
            ],
            Family::SoundStation => &["SSIP5000", "SSIP6000", "SSIP7000", "SSDuo"],
            Family::Vvx => &[
                "VVX101", "VVX150", "VVX201", "VVX250", "VVX300", "VVX301", "VVX310", "VVX311",
                "VVX350", "VVX400", "VVX401", "VVX410", "VVX411", "VVX450", "VVX500", "VVX501",
                "VVX600", "VVX601", "VVX1500", "VVXD230",
            ],
            Family::Trio => &[
                "Trio8300",
                "Trio8500",
                "Trio8800",
                "TrioC60",
                "TrioVisualPlus",
            ],
            Family::Ccx => &["CCX400", "CCX500", "CCX505", "CCX600", "CCX700"],
            Family::Edge => &[
                "EdgeE100", "EdgeE220", "EdgeE300", "EdgeE320", "EdgeE350", "EdgeE400", "EdgeE450",
                "EdgeE500", "EdgeE550",
            ],
            Family::PolyOs => &[],
        }
    }

    /// The family a model token or User-Agent product belongs to, by prefix.
    pub fn of_model(token: &str) -> Option<Family> {
        let t = token.replace('_', "");
        // Compared as bytes: a User-Agent may carry any UTF-8, and slicing the string at a
        // byte count could split a character (a panic, found by the `user_agent` fuzzer).
        let starts = |p: &str| {
            t.as_bytes()
                .get(..p.len())
                .is_some_and(|b| b.eq_ignore_ascii_case(p.as_bytes()))
        };
        Some(if starts("VVX") {
            Family::Vvx
        } else if starts("Trio") {
            Family::Trio
        } else if starts("CCX") {
            Family::Ccx
        } else if starts("Edge") {
            Family::Edge
        } else if starts("SPIP") {
            Family::SoundPoint
        } else if starts("SSIP") || starts("SSDuo") {
            Family::SoundStation
        } else if starts("PolyStudio") || starts("Studio") || starts("G7500") || starts("PolyG") {
            Family::PolyOs
        } else {
            return None;
        })
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The ZTP vendor model of UC Software devices (the ZTP guide).
pub const UCS_VENDOR_MODEL: &str = "Polycom_UCS_Device";
/// The ZTP vendor model of RealPresence Group systems: redirect only, no configuration file.
pub const VIDEO_VENDOR_MODEL: &str = "Polycom Video Endpoint";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_model_maps_back_to_its_family() {
        for family in Family::ALL {
            for model in family.models() {
                assert_eq!(Family::of_model(model), Some(family), "{model}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for family in Family::ALL {
            assert_eq!(Family::from_name(family.name()), Some(family));
        }
        assert_eq!(Family::from_name("vvx"), Some(Family::Vvx));
    }
}
