//! Part numbers → models: which phone a split UC Software image (`<part>.sip.ld`) is for.
//!
//! A split release names each image after the part number of the phone it runs on
//! (`3111-46162-001.sip.ld` for a VVX 410); a phone asks for the APP_FILE_PATH name
//! prefixed with its own part number. This table is the one place that maps them, so a
//! wrong or missing entry is corrected here and nowhere else.
//!
//! *(verify)* Every row rests on public documents, not on a real phone: part numbers as
//! they appear in the file names of split UC Software releases, quoted by open-source
//! provisioning tools and scripts that unpack them (VVX, SoundPoint IP, SoundStation IP),
//! and the Trio 8800 release image (`3111-65290-001.sip.ld`). No source was found for CCX
//! and Edge E images: their part numbers are listed as unknown when a release carries
//! them, never refused.

use super::models::Family;

/// One known part number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub number: &'static str,
    /// The model token (`VVX410`), as in `APP_FILE_PATH_<MODEL>`.
    pub model: &'static str,
    pub family: Family,
}

/// The table *(verify)*.
const PARTS: &[Part] = &[
    // SoundPoint IP
    p("2345-12360-001", "SPIP321", Family::SoundPoint),
    p("2345-12365-001", "SPIP331", Family::SoundPoint),
    p("2345-12375-001", "SPIP335", Family::SoundPoint),
    p("2345-12450-001", "SPIP450", Family::SoundPoint),
    p("2345-12500-001", "SPIP550", Family::SoundPoint),
    p("2345-12560-001", "SPIP560", Family::SoundPoint),
    p("2345-12600-001", "SPIP650", Family::SoundPoint),
    p("2345-12670-001", "SPIP670", Family::SoundPoint),
    // SoundStation IP
    p("3111-30900-001", "SSIP5000", Family::SoundStation),
    p("3111-15600-001", "SSIP6000", Family::SoundStation),
    p("3111-40000-001", "SSIP7000", Family::SoundStation),
    // VVX
    p("3111-40250-001", "VVX101", Family::Vvx),
    p("3111-48810-001", "VVX150", Family::Vvx),
    p("3111-40450-001", "VVX201", Family::Vvx),
    p("3111-48820-001", "VVX250", Family::Vvx),
    p("3111-46135-002", "VVX300", Family::Vvx),
    p("3111-48300-001", "VVX301", Family::Vvx),
    p("3111-46161-001", "VVX310", Family::Vvx),
    p("3111-48350-001", "VVX311", Family::Vvx),
    p("3111-48830-001", "VVX350", Family::Vvx),
    p("3111-46157-002", "VVX400", Family::Vvx),
    p("3111-48400-001", "VVX401", Family::Vvx),
    p("3111-46162-001", "VVX410", Family::Vvx),
    p("3111-48450-001", "VVX411", Family::Vvx),
    p("3111-48840-001", "VVX450", Family::Vvx),
    p("3111-44500-001", "VVX500", Family::Vvx),
    p("3111-48500-001", "VVX501", Family::Vvx),
    p("3111-44600-001", "VVX600", Family::Vvx),
    p("3111-48600-001", "VVX601", Family::Vvx),
    p("2345-17960-001", "VVX1500", Family::Vvx),
    // Trio
    p("3111-65290-001", "Trio8800", Family::Trio),
];

const fn p(number: &'static str, model: &'static str, family: Family) -> Part {
    Part {
        number,
        model,
        family,
    }
}

/// Whether `s` has the shape of a Polycom part number: `NNNN-NNNNN-NNN`.
pub fn is_part_number(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 14
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 10 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// The known part with this number.
pub fn lookup(number: &str) -> Option<Part> {
    PARTS.iter().copied().find(|p| p.number == number)
}

/// Part numbers of a model token (`VVX410`; case does not matter).
pub fn of_model(model: &str) -> Vec<&'static str> {
    PARTS
        .iter()
        .filter(|p| p.model.eq_ignore_ascii_case(model))
        .map(|p| p.number)
        .collect()
}

/// Splits a file name that starts with a part number (`3111-46162-001.sip.ld`) into the
/// part number and the rest (`sip.ld`).
pub fn split_prefixed(file: &str) -> Option<(&str, &str)> {
    let (part, rest) = file.split_at_checked(14)?;
    let rest = rest.strip_prefix('.')?;
    (is_part_number(part) && !rest.is_empty()).then_some((part, rest))
}

/// Every part number that appears in a text (a package's own listing).
pub fn find_in_text(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i + 14 <= b.len() {
        let before_ok = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let after_ok = b.get(i + 14).is_none_or(|c| !c.is_ascii_digit());
        if before_ok
            && after_ok
            && let Ok(s) = std::str::from_utf8(&b[i..i + 14])
            && is_part_number(s)
        {
            if !out.iter().any(|o| o == s) {
                out.push(s.to_string());
            }
            i += 14;
            continue;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_names_a_listed_model_of_its_family() {
        for part in PARTS {
            assert!(is_part_number(part.number), "{}", part.number);
            assert!(
                part.family.models().contains(&part.model),
                "{} is not a listed {} model",
                part.model,
                part.family
            );
            assert_eq!(
                PARTS.iter().filter(|p| p.number == part.number).count(),
                1,
                "{} listed twice",
                part.number
            );
        }
    }

    #[test]
    fn prefixed_names_split_into_part_and_rest() {
        assert_eq!(
            split_prefixed("3111-46162-001.sip.ld"),
            Some(("3111-46162-001", "sip.ld"))
        );
        assert_eq!(split_prefixed("sip.ld"), None);
        assert_eq!(split_prefixed("3111-46162-00x.sip.ld"), None);
        assert_eq!(lookup("3111-46162-001").map(|p| p.model), Some("VVX410"));
        assert_eq!(of_model("vvx410"), vec!["3111-46162-001"]);
    }

    #[test]
    fn part_numbers_are_found_in_a_listing() {
        let text =
            "<release><image part=\"3111-46162-001\"/>3111-65290-001,x13111-00000-0011</release>";
        assert_eq!(find_in_text(text), vec!["3111-46162-001", "3111-65290-001"]);
    }
}
