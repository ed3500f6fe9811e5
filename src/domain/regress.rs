//! Test-only switches that bring back a known defect of the credential state machine, so the
//! model-based test can show it catches each one ("teeth"). Debug builds read
//! `ZEROTOUCH_TEST_REGRESS` (a comma-separated list of names) once; release builds compile
//! every switch to `false` and cannot be told otherwise.
//!
//! The defects, each fixed by a rule of `domain::machine`:
//! - `curl-synced`: a request with the current generation takes older ones away from a MAC;
//! - `own-needs-mode`: a device's own credential is accepted only while the account withholds;
//! - `mode-unconfirmed`: turning withholding on needs no confirmation;
//! - `owned-in-profile`: a profile file may set `device.prov.*` and it is served;
//! - `tag-forever`: the serial tag is confirmed only by a tagged User-Agent, never given up;
//! - `rotate-unenrols`: rotating a device's own credential makes it not enrolled;
//! - `mac-limit`: an address reading many MACs is refused with 429;
//! - `shared-old-401`: an old generation is refused on files that name no device;
//! - `seen-at-request`: `seen_days` is checked at each request, not at the rotation.

/// The switches (see the list above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    CurlSynced,
    OwnNeedsMode,
    ModeUnconfirmed,
    OwnedInProfile,
    TagForever,
    RotateUnenrols,
    MacLimit,
    SharedOld401,
    SeenAtRequest,
}

impl Defect {
    pub const ALL: [Defect; 9] = [
        Defect::CurlSynced,
        Defect::OwnNeedsMode,
        Defect::ModeUnconfirmed,
        Defect::OwnedInProfile,
        Defect::TagForever,
        Defect::RotateUnenrols,
        Defect::MacLimit,
        Defect::SharedOld401,
        Defect::SeenAtRequest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Defect::CurlSynced => "curl-synced",
            Defect::OwnNeedsMode => "own-needs-mode",
            Defect::ModeUnconfirmed => "mode-unconfirmed",
            Defect::OwnedInProfile => "owned-in-profile",
            Defect::TagForever => "tag-forever",
            Defect::RotateUnenrols => "rotate-unenrols",
            Defect::MacLimit => "mac-limit",
            Defect::SharedOld401 => "shared-old-401",
            Defect::SeenAtRequest => "seen-at-request",
        }
    }
}

/// Whether the defect is switched on (debug builds only).
#[cfg(debug_assertions)]
pub fn on(d: Defect) -> bool {
    static ON: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ON.get_or_init(|| {
        std::env::var("ZEROTOUCH_TEST_REGRESS")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    })
    .iter()
    .any(|n| n == d.name())
}

/// Release builds: never.
#[cfg(not(debug_assertions))]
pub fn on(_: Defect) -> bool {
    false
}
