//! Unit tests of the Auto-Sync rules (`super`).
use super::*;

const NOW: i64 = 1_000 * DAY;

/// Generation 1 from day 900, generation 2 from `NOW - 1 day` (a normal rotation).
fn history() -> History {
    History {
        generations: vec![Generation {
            generation: 1,
            user: "old".into(),
            password: "old-password".into(),
            created_at: 900 * DAY,
            retired_at: None,
            accept_until: None,
            compromised: false,
        }],
    }
    .rotated(NOW - DAY, "new", "new-password", 14, false)
}

/// A device seen yesterday holding generation 1.
fn pending_device() -> DeviceFacts {
    DeviceFacts {
        held: Some(1),
        held_at: Some(950 * DAY),
        last_seen: Some(NOW - DAY - 60),
        associated_at: Some(910 * DAY),
        floor: None,
        last_refused: false,
        eligible: Ok(()),
        readmit: None,
    }
}

fn accept(s: &Settings, h: &History, d: &DeviceFacts) -> Result<(), Refusal> {
    accept_old(s, h, d, 1, NOW)
}

#[test]
fn a_device_last_seen_with_its_own_credential_is_synced_in_every_mode() {
    let h = history();
    let own = DeviceFacts {
        held: Some(OWN_CREDENTIAL),
        ..pending_device()
    };
    for enabled in [true, false] {
        let s = Settings {
            enabled,
            ..Default::default()
        };
        let st = state(&s, &h, &own, NOW);
        assert_eq!(
            st,
            SyncState::Synced {
                generation: OWN_CREDENTIAL
            }
        );
        assert_eq!(admits_any(&s, &h, &own, NOW), Ok(()));
    }
    let refused = DeviceFacts {
        last_refused: true,
        ..own.clone()
    };
    assert!(state(&Settings::default(), &h, &refused, NOW).is_locked_out());
    let off = Settings {
        provisioning_enabled: false,
        ..Default::default()
    };
    assert_eq!(
        admits_any(&off, &h, &own, NOW),
        Err(Refusal::ProvisioningDisabled)
    );
}

#[test]
fn a_device_holding_the_old_generation_is_accepted_within_every_rule() {
    let (s, h, d) = (Settings::default(), history(), pending_device());
    assert_eq!(accept(&s, &h, &d), Ok(()));
    assert_eq!(state(&s, &h, &d, NOW), SyncState::Pending { generation: 1 });
    assert_eq!(acceptable(&s, &h, &d, NOW).len(), 1);
}

#[test]
fn rule_1_auto_sync_off_refuses_but_a_readmission_accepts() {
    let (h, mut d) = (history(), pending_device());
    let off = Settings {
        enabled: false,
        ..Default::default()
    };
    assert_eq!(accept(&off, &h, &d), Err(Refusal::AutoSyncOff));
    d.readmit = Some(Readmit {
        generation: 1,
        until: NOW + DAY,
    });
    assert_eq!(accept(&off, &h, &d), Ok(()));
    d.readmit = Some(Readmit {
        generation: 1,
        until: NOW,
    });
    assert_eq!(
        accept(&off, &h, &d),
        Err(Refusal::AutoSyncOff),
        "expired re-admission"
    );
    let disabled = Settings {
        provisioning_enabled: false,
        ..Default::default()
    };
    assert_eq!(
        accept(&disabled, &h, &pending_device()),
        Err(Refusal::ProvisioningDisabled)
    );
}

#[test]
fn rule_2_a_device_that_may_not_be_synced_is_refused() {
    let (s, h, mut d) = (Settings::default(), history(), pending_device());
    d.eligible = eligibility(true, true, false, false, None, &s);
    assert_eq!(
        accept(&s, &h, &d),
        Err(Refusal::NotEligible(Ineligible::AutoAssociated))
    );
    d.eligible = eligibility(true, false, false, false, Some(Family::PolyOs), &s);
    assert_eq!(
        accept(&s, &h, &d),
        Err(Refusal::NotEligible(Ineligible::PolyOsOff))
    );
    let poly = Settings { poly_os: true, ..s };
    assert!(eligibility(true, false, false, false, Some(Family::PolyOs), &poly).is_ok());
    assert_eq!(
        eligibility(true, false, true, false, None, &s),
        Err(Ineligible::ExternalServer)
    );
}

#[test]
fn a_request_with_the_new_generation_takes_nothing_from_the_device() {
    // An admin's curl (or anyone holding option 160) used the new generation: the
    // device is shown synced, and the phone still holding generation 1 is accepted.
    let (s, h, mut d) = (Settings::default(), history(), pending_device());
    d.held = Some(2);
    assert_eq!(accept(&s, &h, &d), Ok(()));
    assert_eq!(state(&s, &h, &d, NOW), SyncState::Synced { generation: 2 });
    // The phone's next request used generation 1: pending again.
    d.held = Some(1);
    assert_eq!(state(&s, &h, &d, NOW), SyncState::Pending { generation: 1 });
}

#[test]
fn rule_4_every_generation_since_the_association_is_accepted_within_its_window() {
    let s = Settings::default();
    let h = history().rotated(NOW - 60, "newer", "newer-password", 14, false);
    let d = pending_device();
    assert_eq!(accept_old(&s, &h, &d, 1, NOW), Ok(()));
    assert_eq!(
        accept_old(&s, &h, &d, 2, NOW),
        Ok(()),
        "it may have adopted generation 2 without any proof reaching us"
    );
    // Never seen: any generation no older than the one current at association.
    let never = DeviceFacts {
        held: None,
        held_at: None,
        last_seen: None,
        associated_at: Some(NOW - DAY + 10),
        ..pending_device()
    };
    assert_eq!(accept_old(&s, &h, &never, 1, NOW), Err(Refusal::NotHeld));
    assert_eq!(accept_old(&s, &h, &never, 2, NOW), Ok(()));
    assert_eq!(
        accept_old(&s, &h, &never, 3, NOW),
        Err(Refusal::UnknownGeneration),
        "the current generation is not an old one"
    );
}

#[test]
fn rule_4_seen_days_is_measured_at_the_rotation() {
    let (mut s, mut d) = (Settings::default(), pending_device());
    // Last seen 20 days before the rotation: within 30 days then, so no floor.
    d.last_seen = Some(NOW - 20 * DAY);
    assert_eq!(floor_after_rotation(&s, &d, 2, NOW), None);
    // Back 12 days later (32 days after it was last seen): still accepted.
    assert_eq!(
        accept_old(&s, &history(), &d, 1, NOW - DAY + 12 * DAY),
        Ok(())
    );
    // Not seen for 31 days at the rotation: refused the old generations from then on.
    d.last_seen = Some(NOW - 31 * DAY);
    d.floor = floor_after_rotation(&s, &d, 2, NOW);
    assert_eq!(d.floor, Some(2));
    assert_eq!(accept(&s, &history(), &d), Err(Refusal::NotSeenAtRotation));
    s.seen_days = 60;
    assert_eq!(floor_after_rotation(&s, &d, 2, NOW), None);
    // Never seen: no floor (it may boot for the first time with what it was given).
    d.last_seen = None;
    assert_eq!(floor_after_rotation(&s, &d, 2, NOW), None);
}

#[test]
fn rule_6_the_grace_window_closes_and_a_compromised_rotation_has_none() {
    let (s, h, d) = (Settings::default(), history(), pending_device());
    let later = NOW - DAY + 14 * DAY;
    assert_eq!(
        accept_old(&s, &h, &d, 1, later - 1),
        Ok(()),
        "last second of the window"
    );
    let seen_then = DeviceFacts {
        last_seen: Some(later - 60),
        ..d.clone()
    };
    assert_eq!(
        accept_old(&s, &h, &seen_then, 1, later),
        Err(Refusal::WindowClosed)
    );
    assert!(state(&s, &h, &seen_then, later).is_locked_out());
    let leaked = History {
        generations: history().generations[..1].to_vec(),
    }
    .rotated(NOW - DAY, "new", "new-password", 14, true);
    assert_eq!(
        accept_old(&s, &leaked, &d, 1, NOW),
        Err(Refusal::WindowClosed)
    );
}

#[test]
fn a_compromised_rotation_closes_the_windows_of_every_older_generation() {
    let h = history().rotated(NOW, "third", "third-password", 14, true);
    assert!(
        h.generations[..2]
            .iter()
            .all(|g| g.accept_until.is_some_and(|u| u <= NOW))
    );
    assert_eq!(h.current(), 3);
    assert!(h.generations[2].compromised);
}

#[test]
fn lockouts_are_counted_before_an_action() {
    let h = history();
    let on = Settings::default();
    let off = Settings {
        enabled: false,
        ..on
    };
    let synced = DeviceFacts {
        held: Some(2),
        ..pending_device()
    };
    let devices = [pending_device(), pending_device(), synced.clone()];
    // The device last seen with the current generation may still hold the older one (a
    // request with the account credential proves nothing about the phone): counted too.
    assert_eq!(locked_out_by((&on, &h), (&off, &h), &devices, NOW).len(), 3);
    assert_eq!(possible(&h, &synced), [2, 1]);
    // Rotating while Auto-Sync is off strands every device that may hold the current
    // generation: all three, each with why.
    let rotated = h.rotated(NOW, "x", "xxxxxxxxx", 14, false);
    let stranded = locked_out_by((&off, &h), (&off, &rotated), &devices, NOW);
    assert_eq!(
        stranded,
        [
            (0, Refusal::AutoSyncOff),
            (1, Refusal::AutoSyncOff),
            (2, Refusal::AutoSyncOff)
        ],
        "each with why"
    );
    // A device proved on its own credential is never counted by account changes.
    let own = DeviceFacts {
        held: Some(OWN_CREDENTIAL),
        ..pending_device()
    };
    assert!(locked_out_by((&on, &h), (&off, &rotated), [&own], NOW).is_empty());
    assert!(locked_out_by((&on, &h), (&on, &rotated), &devices, NOW).is_empty());
    let leaked = h.rotated(NOW, "x", "xxxxxxxxx", 14, true);
    assert_eq!(
        locked_out_by((&on, &h), (&on, &leaked), &devices, NOW).len(),
        3
    );
}

#[test]
fn a_poly_os_device_is_known_by_its_declared_model_or_its_user_agent() {
    assert!(is_poly_os("Poly_Studio_X50", "", ""));
    assert!(is_poly_os("G7500", "", ""));
    assert!(is_poly_os("Polycom_UCS_Device", "PolyOS", ""));
    assert!(is_poly_os("", "", "PolyStudioX30"));
    assert!(!is_poly_os("Polycom_UCS_Device", "VVX", "VVX_500"));
    assert!(!is_poly_os("", "", ""));
}
