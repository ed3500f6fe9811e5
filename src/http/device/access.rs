//! Who a device request is: the 401 challenge, what a failed check answers, the credentials
//! the state machine offers for a request (`domain::machine::candidates`), what a request
//! may be served (`domain::enrolment::access`) and the address-to-MAC binding used to record
//! requests that name no device.

use super::*;

impl DeviceService {
    pub(super) fn challenge(&self, secure: bool, stale: bool) -> Response {
        let mut r = text(401, "authentication required");
        for c in self.auth.challenges(secure, stale) {
            r.headers.push(("WWW-Authenticate".into(), c.into()));
        }
        r
    }

    /// The response for a request whose credentials are not valid, if any.
    pub(super) fn auth_failure(&self, outcome: &Outcome, secure: bool) -> Option<Response> {
        match outcome {
            Outcome::Ok { .. } => None,
            Outcome::Missing | Outcome::Bad | Outcome::Refused { .. } => {
                Some(self.challenge(secure, false))
            }
            Outcome::Stale => Some(self.challenge(secure, true)),
            Outcome::Throttled(secs) => {
                let mut r = text(429, "too many wrong credentials from this address");
                r.headers
                    .push(("Retry-After".into(), secs.to_string().into()));
                Some(r)
            }
        }
    }

    /// One warn line per refused device credential, with the client address where fail2ban
    /// looks for it (`packaging/fail2ban/filter.d/zerotouch.conf`):
    /// `refused device credential from 10.0.0.7 for 0004f2aabbcc: wrong credentials`.
    /// Never for a request without credentials, a stale or replayed Digest nonce (answered
    /// with a fresh challenge) or an older generation still accepted (`Ok`): phones do all of
    /// these in normal operation. Neither the user name nor the password is written.
    pub(super) fn log_refused(outcome: &Outcome, ip: IpAddr, mac: Option<&Mac>) {
        let why = match outcome {
            Outcome::Ok { .. } | Outcome::Missing | Outcome::Stale => return,
            Outcome::Bad => "wrong credentials",
            Outcome::Refused { why, .. } => why.explain(),
            Outcome::Throttled(_) => "too many wrong credentials from this address (throttled)",
        };
        let device = mac.map_or_else(
            || "a request naming no device".to_string(),
            |m| m.to_string(),
        );
        log::warn!("refused device credential from {ip} for {device}: {why}");
    }

    /// Every credential other than the account's current one that a request may present,
    /// with the state machine's verdict (`domain::machine::candidates`): for the device it
    /// names (its path's MAC, else the User-Agent's serial tag, else — for its own credential
    /// — the device that proved itself from this address a moment ago), its own credentials
    /// in every mode of the account and the older generations Auto-Sync accepts for it; for a
    /// request naming no device, every generation still inside its grace window.
    pub(super) fn candidates(
        &self,
        account: &Account,
        mac: Option<Mac>,
        ip: IpAddr,
    ) -> Vec<Candidate> {
        let named = mac.or_else(|| self.bound_mac(ip));
        self.prov
            .candidates(account, named.as_ref())
            .unwrap_or_else(|e| {
                log::error!(
                    "{}: cannot read its credential state: {e}",
                    named.map(|m| m.to_string()).unwrap_or_default()
                );
                Vec::new()
            })
    }

    /// What a request for `entry`'s files may be served, enrolling the device (creating
    /// its own credential) when the request may do so and confirming its credential when
    /// it authenticated with it. Returns the entry to serve from.
    pub(super) fn access_for(
        &self,
        ctx: &Ctx<'_>,
        entry: Arc<DeviceEntry>,
    ) -> crate::Result<(Access, Arc<DeviceEntry>)> {
        let mac = entry.device.mac;
        let proof = ctx.proof(&mac);
        let address = ctx.ip.to_string();
        let access = entry.access(&ctx.account, proof, Some(&address));
        let mut entry = entry;
        if ctx.account.device_secrets && access.delivers() && entry.credential.is_none() {
            entry = self.prov.enrol(&entry)?;
            self.metrics.enrolments.fetch_add(1, Ordering::Relaxed);
            log::info!("{mac}: enrolment started from {address}; its own credential is delivered");
        }
        if proof.certificate && entry.credential.is_none() && ctx.account.device_secrets {
            entry = self.prov.enrol(&entry)?;
            log::info!("{mac}: enrolled (verified device certificate)");
        }
        // The account credential around enrolment: who was sent the pending credential,
        // and who came with the account credential after the device enrolled (contested).
        let enrolled = entry.credential.as_ref().is_some_and(|c| c.enrolled());
        let claim_after = ctx.account.device_secrets
            && !proof.device_credential
            && !proof.certificate
            && enrolled
            && matches!(ctx.auth, Outcome::Ok { .. });
        if access.delivers() || claim_after {
            entry = self
                .prov
                .claim(&entry, &address, ctx.user_agent, access.delivers())?;
        }
        // Its own credential, in any mode of the account: the current one confirms it (and
        // retires every older one it may have held); an older one it still holds shows it is
        // enrolled.
        if let (true, Outcome::Ok { password, .. }, Some(c)) =
            (proof.device_credential, &ctx.auth, &entry.credential)
        {
            if *password == c.password
                && (c.confirmed_at.is_none()
                    || !c.outstanding.is_empty()
                    || c.enrolled_at.is_none())
            {
                entry = self.prov.confirm_device_credential(&entry)?;
            } else if *password != c.password && c.enrolled_at.is_none() {
                entry = self.prov.note_enrolled(&entry)?;
            }
        }
        if access.withholds() {
            self.metrics
                .secrets_withheld
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok((access, entry))
    }

    /// A request naming `mac` presented a credential the state machine recognises and
    /// refused: the device's latest request was refused (reports count it locked out).
    pub(super) fn note_refused(
        &self,
        account: &Account,
        mac: &Mac,
        generation: i64,
        reach: &Reach,
        ua: Option<&UserAgent>,
    ) {
        let entry = match self.prov.lookup(mac) {
            Ok(Lookup::Associated(e)) if e.device.account_id == account.id.0 => e,
            Ok(_) => return,
            Err(e) => {
                log::error!("{mac}: cannot read it: {e}");
                return;
            }
        };
        let ev = Evidence {
            master_fetch: false,
            reach,
            auth: None,
            serial_tag: false,
            tls_probe: false,
            generation: Some(generation),
            family: ua.and_then(|u| u.family),
            proven: false,
            address: None,
        };
        if let Err(e) = self.prov.note_sync(account, entry, &ev, Noted::Refused) {
            log::error!("{mac}: cannot record a refused request: {e}");
        }
    }

    pub(super) fn bind_ip(&self, ip: IpAddr, mac: Mac) {
        let mut m = self.ip_macs.lock().unwrap_or_else(|p| p.into_inner());
        if m.len() > 50_000 {
            m.retain(|_, (_, t)| t.elapsed() < IP_BINDING);
        }
        m.insert(ip, (mac, Instant::now()));
    }

    pub(super) fn bound_mac(&self, ip: IpAddr) -> Option<Mac> {
        let m = self.ip_macs.lock().unwrap_or_else(|p| p.into_inner());
        m.get(&ip)
            .filter(|(_, t)| t.elapsed() < IP_BINDING)
            .map(|(mac, _)| *mac)
    }
}
