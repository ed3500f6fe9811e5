//! libunftp's side of the engine: its authenticator, its user-detail provider and its
//! storage back end, each a thin async shell that runs the `Files` call on tokio's
//! blocking pool. Logins cross from the authenticator to the provider in `Sessions` (the
//! library hands the provider only a user name): a random token names each accepted login
//! and is taken out when the session gets its user.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io::{self, Read};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use unftp_core::auth::{
    AuthenticationError, Authenticator, ChannelEncryptionState, Credentials, Principal, UserDetail,
    UserDetailError, UserDetailProvider,
};
use unftp_core::storage::{self, ErrorKind, Fileinfo, Metadata, StorageBackend};

use super::{Files, Login, Refusal, Stats};

/// A logged-in session's user, holding its place among the sessions logged in (given
/// back when the library drops the session's user).
#[derive(Debug)]
pub struct User(Login, #[allow(dead_code)] Slot);

/// The caps on sessions logged in at once, and the sessions counted by address.
#[derive(Clone)]
pub struct Caps {
    total: usize,
    per_ip: usize,
    exempt: Arc<dyn Fn(IpAddr) -> bool + Send + Sync>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Caps {
    pub fn new(
        total: usize,
        per_ip: usize,
        exempt: Arc<dyn Fn(IpAddr) -> bool + Send + Sync>,
    ) -> Caps {
        Caps {
            total,
            per_ip,
            exempt,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A place for one more session from `ip`, if the caps allow it.
    fn take(&self, ip: IpAddr) -> Option<Slot> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let all: usize = open.values().sum();
        let mine = open.get(&ip).copied().unwrap_or(0);
        if all >= self.total || (mine >= self.per_ip && !(self.exempt)(ip)) {
            return None;
        }
        *open.entry(ip).or_insert(0) += 1;
        Some(Slot {
            ip,
            open: self.open.clone(),
        })
    }
}

/// One logged-in session's place, given back when the session ends.
pub struct Slot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Slot")
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

impl fmt::Display for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        write!(f, "{}@{}", self.0.user, self.0.ip)
    }
}

impl UserDetail for User {}

/// Accepted logins waiting for their session's user, by token.
#[derive(Debug, Clone, Default)]
pub struct Sessions(Arc<Mutex<HashMap<String, (Login, Slot)>>>);

#[async_trait]
impl UserDetailProvider for Sessions {
    type User = User;

    async fn provide_user_detail(&self, principal: &Principal) -> Result<User, UserDetailError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&principal.username)
            .map(|(login, slot)| User(login, slot))
            .ok_or_else(|| UserDetailError::UserNotFound {
                username: String::new(),
            })
    }
}

/// The authenticator: `Files::login` on the blocking pool.
pub struct Logins {
    pub files: Arc<dyn Files>,
    pub stats: Arc<Stats>,
    pub sessions: Sessions,
    pub caps: Caps,
}

impl fmt::Debug for Logins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Logins")
    }
}

#[async_trait]
impl Authenticator for Logins {
    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        let login = Login {
            user: username.to_string(),
            password: creds.password.clone().unwrap_or_default(),
            ip: creds.source_ip,
            secure: creds.command_channel_security == ChannelEncryptionState::Tls,
        };
        let Some(slot) = self.caps.take(login.ip) else {
            Stats::count(&self.stats.busy, 1);
            log::warn!(
                "ftp: {}: login refused: too many FTP sessions logged in (limits.max_connections_per_ip, limits.max_connections)",
                login.ip
            );
            return Err(AuthenticationError::new("too many sessions"));
        };
        let files = self.files.clone();
        let checked = login.clone();
        let ok = tokio::task::spawn_blocking(move || files.login(&checked))
            .await
            .unwrap_or(false);
        if !ok {
            Stats::count(&self.stats.refused_logins, 1);
            return Err(AuthenticationError::BadPassword);
        }
        Stats::count(&self.stats.logins, 1);
        let token = random_token();
        let mut sessions = self.sessions.0.lock().unwrap_or_else(|p| p.into_inner());
        // A provider call that never came (a dropped connection) leaves its token: bounded.
        if sessions.len() > 10_000 {
            sessions.clear();
        }
        sessions.insert(token.clone(), (login, slot));
        Ok(Principal { username: token })
    }
}

fn random_token() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // Not a secret: only a key between two calls of one login.
        b = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos().to_le_bytes())
            .unwrap_or_default();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A file's metadata as SIZE, MDTM and listings see it.
#[derive(Debug, Clone)]
pub struct Meta {
    len: u64,
    modified: Option<SystemTime>,
    dir: bool,
}

impl Metadata for Meta {
    fn len(&self) -> u64 {
        self.len
    }

    fn is_dir(&self) -> bool {
        self.dir
    }

    fn is_file(&self) -> bool {
        !self.dir
    }

    fn is_symlink(&self) -> bool {
        false
    }

    fn modified(&self) -> storage::Result<SystemTime> {
        self.modified
            .ok_or_else(|| storage::Error::from(ErrorKind::PermanentFileNotAvailable))
    }

    fn gid(&self) -> u32 {
        0
    }

    fn uid(&self) -> u32 {
        0
    }
}

/// The storage back end: every call is a `Files` call on the blocking pool.
pub struct Backend {
    pub files: Arc<dyn Files>,
    pub stats: Arc<Stats>,
    /// The whole upload must have arrived within this time (a trickle ends, as over HTTP).
    pub upload_deadline: Duration,
}

/// A reader that fails once its deadline has passed, even while a read waits.
struct Deadline<R> {
    inner: R,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Deadline<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.sleep.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the upload took too long",
            )));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Backend")
    }
}

fn error(r: Refusal) -> storage::Error {
    storage::Error::from(match r {
        Refusal::NotFound => ErrorKind::PermanentFileNotAvailable,
        Refusal::Denied => ErrorKind::PermissionDenied,
        Refusal::BadName => ErrorKind::FileNameNotAllowedError,
        Refusal::TooLarge => ErrorKind::ExceededStorageAllocationError,
        Refusal::Busy => ErrorKind::TransientFileNotAvailable,
        Refusal::Failed => ErrorKind::LocalError,
    })
}

/// The path as the files see it: absolute, `/`-separated. A name that is not UTF-8 is
/// refused.
fn path_of(p: &Path) -> Result<String, storage::Error> {
    let s = p
        .to_str()
        .ok_or_else(|| storage::Error::from(ErrorKind::FileNameNotAllowedError))?;
    Ok(if s.starts_with('/') {
        s.to_string()
    } else {
        format!("/{s}")
    })
}

impl Backend {
    /// Runs `f` on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Files) -> Result<T, Refusal> + Send + 'static,
    ) -> storage::Result<T> {
        let files = self.files.clone();
        let r = tokio::task::spawn_blocking(move || f(&*files))
            .await
            .map_err(|_| storage::Error::from(ErrorKind::LocalError))?;
        r.map_err(|why| {
            Stats::count(&self.stats.refused, 1);
            error(why)
        })
    }
}

#[async_trait]
impl StorageBackend<User> for Backend {
    type Metadata = Meta;

    fn supported_features(&self) -> u32 {
        storage::FEATURE_RESTART
    }

    async fn metadata<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &User,
        path: P,
    ) -> storage::Result<Meta> {
        let path = path_of(path.as_ref())?;
        let login = user.0.clone();
        self.blocking(move |f| {
            let c = f.read(&login, &path, "SIZE", 0)?;
            Ok(Meta {
                len: c.len,
                modified: c.modified,
                dir: false,
            })
        })
        .await
    }

    async fn list<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        _user: &User,
        _path: P,
    ) -> storage::Result<Vec<Fileinfo<PathBuf, Meta>>> {
        // Listings reveal nothing.
        Ok(Vec::new())
    }

    async fn get<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &User,
        path: P,
        start_pos: u64,
    ) -> storage::Result<Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>> {
        let path = path_of(path.as_ref())?;
        let login = user.0.clone();
        let files = self.files.clone();
        let stats = self.stats.clone();
        let (reader, writer) = tokio::io::duplex(64 * 1024);
        let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
        // One blocking thread opens the file and copies it into the pipe: what the files
        // hold while serving (an admission pass) stays on that thread until it is done.
        tokio::task::spawn_blocking(move || {
            let mut content = match files.read(&login, &path, "RETR", start_pos) {
                Ok(c) => {
                    let _ = opened_tx.send(Ok(()));
                    c
                }
                Err(why) => {
                    let _ = opened_tx.send(Err(why));
                    return;
                }
            };
            Stats::count(&stats.reads, 1);
            let mut sink = tokio_util::io::SyncIoBridge::new(writer);
            match io::copy(&mut content.body, &mut sink) {
                Ok(n) => Stats::count(&stats.bytes_sent, n),
                Err(e) => log::debug!("ftp: {}: RETR {path} ended early: {e}", login.ip),
            }
        });
        match opened_rx.await {
            Ok(Ok(())) => Ok(Box::new(reader)),
            Ok(Err(why)) => {
                Stats::count(&self.stats.refused, 1);
                Err(error(why))
            }
            Err(_) => Err(storage::Error::from(ErrorKind::LocalError)),
        }
    }

    async fn put<
        P: AsRef<Path> + Send + fmt::Debug,
        R: tokio::io::AsyncRead + Send + Sync + Unpin + 'static,
    >(
        &self,
        user: &User,
        input: R,
        path: P,
        start_pos: u64,
    ) -> storage::Result<u64> {
        let path = path_of(path.as_ref())?;
        let login = user.0.clone();
        let stats = self.stats.clone();
        let input = Deadline {
            inner: input,
            sleep: Box::pin(tokio::time::sleep(self.upload_deadline)),
        };
        let n = self
            .blocking(move |f| {
                let mut body = tokio_util::io::SyncIoBridge::new(input);
                f.store(&login, &path, &mut body as &mut dyn Read, start_pos)
            })
            .await?;
        Stats::count(&stats.stores, 1);
        Stats::count(&stats.bytes_received, n);
        Ok(n)
    }

    async fn del<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        _user: &User,
        _path: P,
    ) -> storage::Result<()> {
        Err(ErrorKind::PermissionDenied.into())
    }

    async fn mkd<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        _user: &User,
        _path: P,
    ) -> storage::Result<()> {
        Err(ErrorKind::PermissionDenied.into())
    }

    async fn rename<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        _user: &User,
        _from: P,
        _to: P,
    ) -> storage::Result<()> {
        Err(ErrorKind::PermissionDenied.into())
    }

    async fn rmd<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        _user: &User,
        _path: P,
    ) -> storage::Result<()> {
        Err(ErrorKind::PermissionDenied.into())
    }

    async fn cwd<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &User,
        path: P,
    ) -> storage::Result<()> {
        let path = path_of(path.as_ref())?;
        let login = user.0.clone();
        self.blocking(move |f| f.enter(&login, &path)).await
    }
}
