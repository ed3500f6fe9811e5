//! Parsing the User-Agent phones send: family, model, firmware version, serial tag, and
//! whether the request comes from the boot-stage updater or the application.
//!
//! Shape: `FileTransport Polycom<Product>-<MODEL>-UA/<version>[ (SN:<mac>)] Type/<kind>`,
//! with `Poly` for newer devices, `G_SERIES-PolyStudioX30` for VideoOS, and a
//! `Microbrowser/1.1` prefix on some requests. The firmware version is trusted only from
//! `Type/Application`: the updater reports its own version.

use super::mac::Mac;
use super::polycom::models::Family;

/// What a User-Agent says about the device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserAgent {
    /// Product as sent, e.g. `PolycomVVX`, `G_SERIES`.
    pub product: String,
    /// Model as sent, e.g. `VVX_410`, `PolyStudioX30`.
    pub model: String,
    /// Model token for per-model master attributes, e.g. `VVX410`.
    pub model_token: String,
    pub family: Option<Family>,
    /// Version as sent (`5.9.5.0614`, `3.10.0_362035`).
    pub version: String,
    /// MAC from a `(SN:<mac>)` tag (`device.prov.tagSerialNo=1`).
    pub serial_mac: Option<Mac>,
    pub kind: UaKind,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UaKind {
    Application,
    Updater,
    #[default]
    Other,
}

impl UserAgent {
    /// The application firmware version, only when the request is from the application.
    pub fn firmware(&self) -> Option<&str> {
        (self.kind == UaKind::Application && !self.version.is_empty()).then_some(&self.version)
    }

    /// A family name for display: the known family, else the product as sent.
    pub fn family_name(&self) -> String {
        self.family
            .map(|f| f.name().to_string())
            .unwrap_or_else(|| self.product.clone())
    }
}

/// Parses a Polycom/Poly User-Agent. Returns `None` when it is not one.
pub fn parse(ua: &str) -> Option<UserAgent> {
    let mut out = UserAgent::default();
    let mut found = false;
    for (i, token) in ua.split_ascii_whitespace().enumerate() {
        if let Some((left, version)) = token.split_once("-UA/") {
            let (product, model) = left.split_once('-')?;
            if product.is_empty() || model.is_empty() {
                return None;
            }
            out.product = product.to_string();
            out.model = model.to_string();
            out.model_token = model_token(product, model);
            out.family = Family::of_model(&out.model_token).or_else(|| Family::of_model(model));
            out.version = version.to_string();
            found = true;
        } else if let Some(rest) = token.strip_prefix("(SN:") {
            out.serial_mac = rest.strip_suffix(')').and_then(Mac::from_bare);
        } else if let Some(kind) = token.strip_prefix("Type/") {
            out.kind = match kind {
                "Application" => UaKind::Application,
                "Updater" => UaKind::Updater,
                _ => UaKind::Other,
            };
        } else if i == 0 && !token.starts_with("FileTransport") && !token.contains('/') {
            return None;
        }
    }
    found.then_some(out)
}

/// `VVX_410` → `VVX410`; `Edge_E450` → `EdgeE450`; `PolyStudioX30` → `StudioX30`.
pub fn model_token(_product: &str, model: &str) -> String {
    let m = model
        .strip_prefix("Poly")
        .filter(|r| !r.is_empty())
        .unwrap_or(model);
    m.replace('_', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> UserAgent {
        parse(s).unwrap_or_else(|| panic!("should parse: {s}"))
    }

    #[test]
    fn documented_user_agents_parse() {
        let ua = p(
            "FileTransport PolycomSoundPointIP-SPIP_550-UA/4.0.15.1047 (SN:0004a11a1a1a) Type/Application",
        );
        assert_eq!(ua.model_token, "SPIP550");
        assert_eq!(ua.family, Some(Family::SoundPoint));
        assert_eq!(ua.firmware(), Some("4.0.15.1047"));
        assert_eq!(
            ua.serial_mac.map(|m| m.to_string()).as_deref(),
            Some("0004a11a1a1a")
        );

        let ua = p("FileTransport PolycomSoundStationIP-SSIP_6000-UA/5.0.3.1667 Type/Updater");
        assert_eq!(ua.family, Some(Family::SoundStation));
        assert_eq!(
            ua.firmware(),
            None,
            "the updater's version is not the firmware"
        );

        let ua = p("FileTransport PolycomVVX-VVX_410-UA/5.9.5.0614 Type/Application");
        assert_eq!(
            (ua.model_token.as_str(), ua.family),
            ("VVX410", Some(Family::Vvx))
        );

        let ua = p(
            "FileTransport PolycomRealPresenceTrio-Trio_8800-UA/7.2.2.1094 (SN:0004f2aabbcc) Type/Application",
        );
        assert_eq!(
            (ua.model_token.as_str(), ua.family),
            ("Trio8800", Some(Family::Trio))
        );

        let ua = p("FileTransport PolyEdge-Edge_E450-UA/8.0.0.15602 Type/Application");
        assert_eq!(
            (ua.model_token.as_str(), ua.family),
            ("EdgeE450", Some(Family::Edge))
        );

        let ua =
            p("FileTransport PolyCCX-CCX_600-UA/8.0.2.3267 (SN:482567b5313f) Type/Application");
        assert_eq!(
            (ua.model_token.as_str(), ua.family),
            ("CCX600", Some(Family::Ccx))
        );

        let ua = p("FileTransport G_SERIES-PolyStudioX30-UA/3.10.0_362035 Type/Application");
        assert_eq!(ua.family, Some(Family::PolyOs));
        assert_eq!(ua.firmware(), Some("3.10.0_362035"));

        let ua = p("Microbrowser/1.1 PolycomSoundPointIP-SPIP_550-UA/4.0.15.1047 Type/Application");
        assert_eq!(ua.model, "SPIP_550");
    }

    #[test]
    fn other_agents_are_not_phones() {
        assert!(parse("curl/8.5.0").is_none());
        assert!(parse("Mozilla/5.0 (X11; Linux x86_64)").is_none());
        assert!(parse("").is_none());
        assert!(parse("FileTransport -UA/1").is_none());
    }

    /// Regression (fuzzing, `user_agent` target): a model token whose first characters are
    /// multi-byte UTF-8 made the family check slice inside a character and panic.
    #[test]
    fn a_model_with_multibyte_characters_does_not_panic() {
        let bytes = include_bytes!("../../tests/fuzz-regressions/user_agent-multibyte-model.bin");
        let _ = parse(&String::from_utf8_lossy(bytes));
        for ua in [
            "FileTransport PolycomVVX-VVX\u{fffd}_500-UA/5.9.7 Type/Application",
            "FileTransport Polycom\u{e9}\u{e9}-\u{e9}\u{e9}X-UA/5.9 Type/Application",
            "FileTransport PolycomVVX-\u{1f4de}-UA/5.9.7 Type/Application",
        ] {
            let _ = parse(ua);
        }
        assert!(
            p("FileTransport PolycomVVX-VVX_500-UA/5.9.7.47435 Type/Application")
                .family
                .is_some()
        );
    }
}
