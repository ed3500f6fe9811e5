//! What a device receives and why: everything its files are rendered from (`DeviceData`),
//! rendering one file exactly as the device endpoint serves it, and its effective settings
//! with the source of each value.
//!
//! The device endpoint (`actions::provisioning`, through its cache), `zerotouch render`,
//! `render --explain`, the console's device and effective-settings pages and the override
//! report all load a device here and render through `DeviceData::render`, so what an admin
//! reads is what the phone gets for the same request (host, scheme, credentials). Rendering
//! never records anything: recording deliveries is the device endpoint's, after it served.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

use rusqlite::Connection;

use crate::db::credentials::{self, DeviceSync};
use crate::db::enrolment::{self as enrolment_q, DeviceCredential, Window};
use crate::db::{self, accounts, devices, profiles};
use crate::domain::account::{Account, AccountId};
use crate::domain::autosync::Settings;
use crate::domain::device::Device;
use crate::domain::enrolment::{self, Access, Proof, Standing};
use crate::domain::mac::Mac;
use crate::domain::policy::{CredentialLayer, Layers};
use crate::domain::polycom::models::Family;
use crate::domain::polycom::render::{DeviceView, EffectiveParam, profile_file_name};
use crate::domain::profile::Profile;
use crate::domain::provstate::{ParamState, PhoneTrust, Reach};
use crate::domain::variables::{self, Context, DeviceVarSet, Subject};
use crate::error::{Error, Result};

/// The pending platform values a rendered file delivers: `(parameter, value)`.
pub type Delivered = Vec<(String, String)>;

/// Which of a device's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    Master,
    Generated,
    Profile(usize),
}

/// Everything a device's files are rendered from.
#[derive(Debug, Clone)]
pub struct DeviceData {
    pub device: Device,
    /// Shared by every cached device of the profile (its files can be large); `None` for a
    /// device seen but not associated.
    pub profile: Option<Arc<Profile>>,
    pub state: BTreeMap<String, ParamState>,
    /// What the device is known to hold (credential generation, address, family).
    pub sync: DeviceSync,
    /// Auto-Sync and the policies that apply to the device.
    pub layers: Layers,
    /// The model the device reported (for `${FIRMWARE}`), or empty.
    pub model: String,
    /// The device's own credential (accounts that withhold secrets), if it has one.
    pub credential: Option<DeviceCredential>,
    /// The enrolment windows naming the device or every device that were open when it was
    /// loaded (windows bump the configuration revision).
    pub windows: Vec<Window>,
    /// It keeps the secrets it was served before withholding became the default until it
    /// enrols.
    pub served_before: bool,
}

impl DeviceData {
    /// Loads what applies to `device` of `account` (with its Auto-Sync `settings`), its
    /// profile given (the device endpoint shares one copy per profile).
    pub fn load(
        conn: &Connection,
        device: Device,
        account: Option<&Account>,
        settings: Option<&Settings>,
        profile: Option<Arc<Profile>>,
    ) -> Result<DeviceData> {
        let state = devices::load_prov_state(conn, device.id)?;
        let sync = credentials::find_sync(conn, device.id)?.unwrap_or_default();
        let now = db::now_secs();
        let layers = Layers {
            sync: match (account, settings) {
                (Some(a), Some(s)) => {
                    super::accounts::sync_target(a, s, &device, profile.as_deref(), &sync, now)
                }
                _ => None,
            },
            policies: if profile.is_some() {
                super::policy::device_policies(conn, &device)?
            } else {
                Vec::new()
            },
            credentials: CredentialLayer::Account,
            // Seen, else declared (a vendor model such as `Poly_Studio_X50`).
            family: sync
                .family
                .or_else(|| Family::of_model(&device.vendor_model.replace(' ', ""))),
        };
        let model = devices::find_activity(conn, device.id)?
            .map(|a| a.ua_model)
            .unwrap_or_default();
        // Its own credential is its own in every mode of the account (a device enrolled
        // while the account withheld keeps using it after), so it is always read.
        let credential = enrolment_q::find_device_credential(conn, device.id)?;
        let windows = if account.is_some_and(|a| a.device_secrets) {
            enrolment_q::list_open_windows_for(conn, device.account_id, device.mac.as_str(), now)?
        } else {
            Vec::new()
        };
        let served_before = enrolment_q::served_before(conn, device.id)?;
        Ok(DeviceData {
            device,
            profile,
            state,
            sync,
            layers,
            model,
            credential,
            windows,
            served_before,
        })
    }

    /// Whether an enrolment window covers the device now for a request from `address`
    /// (`None`: from wherever a window allows).
    pub fn window_open(&self, address: Option<&str>) -> bool {
        let now = db::now_secs();
        let mac = self.device.mac.as_str();
        self.windows.iter().any(|w| match address {
            Some(a) => w.covers(mac, a, now),
            None => w.covers(mac, w.address.as_deref().unwrap_or(""), now),
        })
    }

    /// Where the device stands with enrolment, for a request from `address`.
    pub fn standing(&self, address: Option<&str>) -> Standing<'_> {
        let model = if self.device.vendor_model.is_empty() {
            self.profile
                .as_deref()
                .map_or("", |p| p.fields.vendor_model.as_str())
        } else {
            self.device.vendor_model.as_str()
        };
        Standing {
            credential: self.credential.as_ref(),
            window_open: self.window_open(address),
            served_before: self.served_before,
            exempt: !enrolment::adopts_own_credential(model),
            certificate_only: crate::actions::enrolment::certificate_only(),
        }
    }

    /// What a request of `account` with `proof` from `address` may be served
    /// (`domain::enrolment`).
    pub fn access(&self, account: &Account, proof: Proof, address: Option<&str>) -> Access {
        enrolment::access(account, proof, self.standing(address))
    }

    /// The layers for a request with `access` carrying `held`: the device's own credential
    /// is desired when the account withholds (the device enrols or proved itself) or when the
    /// request itself used it — an enrolled device keeps its own credential whatever the
    /// account's mode. A request that proved nothing in an account that withholds gets
    /// Auto-Sync's account credentials, as any holder of the account credential does: a
    /// phone not yet enrolled must follow rotations, or its grace window would close on it
    /// (I1); its own credential is never sent to it.
    pub fn layers_for(
        &self,
        account: &Account,
        access: Access,
        held: Option<(&str, &str)>,
    ) -> Cow<'_, Layers> {
        let own_request = held.is_some_and(|(u, _)| u == self.device.mac.as_str());
        let credentials = match (access, &self.credential) {
            (Access::Withheld, _) => return Cow::Borrowed(&self.layers),
            (_, Some(c)) if account.device_secrets || own_request => CredentialLayer::Device {
                user: self.device.mac.to_string(),
                password: c.password.clone(),
                family: self.sync.family.unwrap_or(Family::Vvx),
            },
            _ => return Cow::Borrowed(&self.layers),
        };
        let mut layers = self.layers.clone();
        layers.credentials = credentials;
        Cow::Owned(layers)
    }

    /// The renderers' view of the device at `reach` (None for a device not associated).
    pub fn view<'a>(
        &'a self,
        account: &'a Account,
        reach: &'a Reach,
        trust: Option<&'a PhoneTrust>,
        layers: &'a Layers,
        held: Option<(&'a str, &'a str)>,
    ) -> Option<DeviceView<'a>> {
        Some(DeviceView {
            account,
            device: &self.device,
            profile: self.profile.as_ref()?,
            state: &self.state,
            reach,
            trust,
            layers,
            held,
        })
    }

    /// The variables its profile's files are expanded with.
    pub fn vars(
        &self,
        account: &Account,
        reach: &Reach,
        context: &Context,
    ) -> Option<DeviceVarSet> {
        Some(variables::for_device(
            context,
            &Subject {
                account,
                device: &self.device,
                profile: self.profile.as_ref()?,
                reach,
                model: &self.model,
            },
        ))
    }

    /// One of its files as the device endpoint serves it to a request at `reach` with
    /// `access`, and the pending platform values it delivers. None when the device has no
    /// such file (not associated, a profile file past the last, a video endpoint's files).
    #[allow(clippy::too_many_arguments)]
    pub fn render(
        &self,
        account: &Account,
        kind: FileKind,
        reach: &Reach,
        access: Access,
        held: Option<(&str, &str)>,
        trust: Option<&PhoneTrust>,
        context: &Context,
    ) -> Option<(Vec<u8>, Delivered)> {
        let layers = self.layers_for(account, access, held);
        let view = self.view(account, reach, trust, &layers, held)?;
        let (bytes, delivered) = match kind {
            FileKind::Master => (view.master_file(), Vec::new()),
            FileKind::Generated => view.device_file(),
            FileKind::Profile(i) => {
                if view.profile.is_video_endpoint() {
                    return None;
                }
                let vars = self.vars(account, reach, context)?;
                // What the state machine owns is never served from a profile file (I6): a
                // file stored before that rule (flagged at start) is served without it.
                let bytes = view.profile_file_with(i, &vars)?;
                (crate::domain::withhold::strip_owned(&bytes).0, Vec::new())
            }
        };
        // Without proof, secrets stay out of the file (all but the provisioning password the
        // state machine delivers); the phone still boots on the rest.
        let bytes = if access.withholds() && kind != FileKind::Master {
            crate::domain::withhold::withhold_secrets(&bytes, delivered_password(&layers))
        } else {
            bytes
        };
        Some((bytes, delivered))
    }

    /// Every file it receives at `reach` with `access`, by the name the phone asks for.
    pub fn files(
        &self,
        account: &Account,
        reach: &Reach,
        access: Access,
        held: Option<(&str, &str)>,
        trust: Option<&PhoneTrust>,
        context: &Context,
    ) -> Vec<(String, Vec<u8>)> {
        let mac = self.device.mac;
        let mut kinds = vec![
            (format!("{mac}.cfg"), FileKind::Master),
            (format!("{mac}-device.cfg"), FileKind::Generated),
        ];
        let files = self.profile.as_ref().map_or(0, |p| p.files.len());
        kinds
            .extend((0..files).map(|i| (profile_file_name(mac.as_str(), i), FileKind::Profile(i))));
        kinds
            .into_iter()
            .filter_map(|(name, kind)| {
                self.render(account, kind, reach, access, held, trust, context)
                    .map(|(bytes, _)| (name, bytes))
            })
            .collect()
    }

    /// Its effective settings at `reach` with `access` (the phone reads its files first file
    /// wins): every parameter, its value (the caller masks secrets) and its source.
    pub fn effective_settings(
        &self,
        account: &Account,
        reach: &Reach,
        access: Access,
        held: Option<(&str, &str)>,
        trust: Option<&PhoneTrust>,
        context: &Context,
    ) -> Option<Vec<EffectiveParam>> {
        let layers = self.layers_for(account, access, held);
        let view = self.view(account, reach, trust, &layers, held)?;
        let vars = self.vars(account, reach, context)?;
        let mut settings = view.effective_settings_with(&vars);
        if access.withholds() {
            // What `render` leaves out of the files, the settings leave out too.
            let delivered = delivered_password(&layers);
            settings.retain(|p| !crate::domain::withhold::withheld(&p.name, &p.value, delivered));
        }
        Some(settings)
    }
}

/// The provisioning password the layers deliver: the device's own while it enrols, else
/// Auto-Sync's account password.
fn delivered_password(layers: &Layers) -> Option<&str> {
    match &layers.credentials {
        CredentialLayer::Device { password, .. } => Some(password.as_str()),
        CredentialLayer::Account => layers.sync.as_ref().map(|s| s.password.as_str()),
    }
}

/// An associated device and its account, read from the database.
pub fn load(conn: &Connection, mac: &Mac) -> Result<(Account, DeviceData)> {
    let device = devices::find_device_by_mac(conn, mac)?
        .ok_or_else(|| Error::not_found(format!("device {mac}")))?;
    let Some(profile_id) = device.profile_id else {
        return Err(Error::Conflict(format!(
            "device {mac} has been seen but is not associated with a profile"
        )));
    };
    let profile = profiles::find_profile_by_id(conn, profile_id)?
        .ok_or_else(|| Error::not_found("profile"))?;
    let account = accounts::find_by_id(conn, AccountId(device.account_id))?
        .ok_or_else(|| Error::not_found("account"))?;
    let settings = credentials::load_settings(conn, account.id)?;
    let data = DeviceData::load(
        conn,
        device,
        Some(&account),
        Some(&settings),
        Some(Arc::new(profile)),
    )?;
    Ok((account, data))
}

/// Which credential a previewed request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    /// The device's own proof (its own credential or certificate): what the phone gets.
    Device,
    /// The account credential (DHCP option 160's): what anyone holding it gets.
    Account,
}

/// The access a request with `credential` gets, and the credentials it carries: the
/// device's own current credential when it has one, else the account's current one.
pub fn access_as(
    account: &Account,
    data: &DeviceData,
    credential: As,
) -> (Access, Option<(String, String)>) {
    let own = data
        .credential
        .as_ref()
        .filter(|_| credential == As::Device)
        .map(|c| (data.device.mac.to_string(), c.password.clone()));
    let proof = Proof {
        device_credential: credential == As::Device,
        certificate: false,
    };
    let held = own.or_else(|| {
        account
            .device_user
            .clone()
            .zip(account.device_password.clone())
    });
    (data.access(account, proof, None), held)
}

/// A borrowed view of owned credentials.
pub fn pair(held: &Option<(String, String)>) -> Option<(&str, &str)> {
    held.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
}

/// The files `mac` receives for a request at `reach` with `credential`, by name: the
/// bytes the device endpoint serves (`zerotouch render`, the console's device page).
pub fn render_device(
    conn: &Connection,
    mac: &Mac,
    reach: &Reach,
    credential: As,
    trust: Option<&PhoneTrust>,
) -> Result<Vec<(String, Vec<u8>)>> {
    let context = super::templating::load_context(conn)?;
    if context.settings.is_external() {
        // External mode: what is generated for the device management system.
        return Ok(super::templating::load_device(conn, mac)?
            .files(&context, reach, trust)
            .files);
    }
    let (account, data) = load(conn, mac)?;
    let (access, held) = access_as(&account, &data, credential);
    Ok(data.files(&account, reach, access, pair(&held), trust, &context))
}

/// A device's effective settings with provenance (Lens "My Settings"; `render --explain`)
/// for a request at `reach` with `credential`.
pub fn explain_device(
    conn: &Connection,
    mac: &Mac,
    reach: &Reach,
    credential: As,
    trust: Option<&PhoneTrust>,
) -> Result<Vec<EffectiveParam>> {
    let (account, data) = load(conn, mac)?;
    let context = super::templating::load_context(conn)?;
    let (access, held) = access_as(&account, &data, credential);
    Ok(data
        .effective_settings(&account, reach, access, pair(&held), trust, &context)
        .unwrap_or_default())
}
