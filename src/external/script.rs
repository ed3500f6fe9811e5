//! The custom-script transport: runs the admin's executable with a device's generated
//! file paths as arguments.
//!
//! The script gets a clean environment: `PATH`, `LANG` and `PROV_MAC` (lower case),
//! `PROV_TENANT`, `PROV_MODE` (`external`), `PROV_SERVER` (the DMS phones download from)
//! and `PROV_MODEL_SEGMENT`; no variable of the server's own environment leaks to it. Its
//! working directory is `<data_dir>/external/`, standard input is empty, standard output and
//! error are collected (the first 64 KiB) for the log. It runs in a process group of its
//! own, so on timeout the whole group — the script and anything it started — is killed.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Job, Outcome};
use crate::domain::settings::ProvSettings;

/// Output kept per run, stdout and stderr together.
const OUTPUT_MAX: usize = 64 * 1024;
/// `PATH` of the script.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRun {
    /// The exit code; `None` when it was killed or could not start.
    pub exit: Option<i32>,
    pub timed_out: bool,
    /// Standard output and error, as far as collected.
    pub output: String,
    pub duration: Duration,
    /// Why it could not start, if it could not.
    pub error: Option<String>,
}

impl ScriptRun {
    /// The run as a transport outcome: success is exit code 0.
    pub fn outcome(&self) -> Outcome {
        let ms = self.duration.as_millis();
        let summary = if let Some(e) = &self.error {
            format!("script did not start: {e}")
        } else if self.timed_out {
            format!("script killed after the timeout ({ms} ms)")
        } else {
            match self.exit {
                Some(code) => format!("script exit code {code} in {ms} ms"),
                None => format!("script ended by a signal after {ms} ms"),
            }
        };
        let output = self.output.trim_end();
        Outcome {
            ok: self.exit == Some(0),
            summary: if output.is_empty() {
                summary
            } else {
                format!("{summary}; output: {output}")
            },
        }
    }
}

/// Runs the script of `settings` for `job`, waiting at most `script_timeout_secs`.
pub fn run(settings: &ProvSettings, job: &Job) -> ScriptRun {
    let env = [
        ("PROV_MAC", job.mac.clone()),
        ("PROV_TENANT", job.tenant.clone()),
        ("PROV_MODE", settings.mode.as_str().to_string()),
        ("PROV_SERVER", settings.external_server.clone()),
        ("PROV_MODEL_SEGMENT", job.segment.clone()),
    ];
    let args: Vec<String> = job
        .files
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    let cwd = job
        .files
        .first()
        .and_then(|f| f.parent())
        .and_then(|p| p.parent());
    run_command(
        &settings.script_path,
        &args,
        &env,
        cwd,
        Duration::from_secs(settings.script_timeout_secs.into()),
    )
}

/// Runs `program` with `args` in a clean environment (`PATH`, `LANG` and `env`, nothing of
/// the server's own), empty standard input, in `cwd` if given and in a process group of its
/// own, waiting at most `timeout` (then the group is killed); collects the first 64 KiB of
/// its output. Shared by the script transport and apply-now's PBX command.
pub fn run_command(
    program: &str,
    args: &[String],
    env: &[(&str, String)],
    cwd: Option<&std::path::Path>,
    timeout: Duration,
) -> ScriptRun {
    use std::os::unix::process::CommandExt;
    let started = Instant::now();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .env("PATH", PATH)
        .env("LANG", "C.UTF-8")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return ScriptRun {
                exit: None,
                timed_out: false,
                output: String::new(),
                duration: started.elapsed(),
                error: Some(format!("{program}: {e}")),
            };
        }
    };
    // Both streams feed one channel; readers end when the pipes close.
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let mut readers = 0;
    let streams: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ];
    for mut stream in streams.into_iter().flatten() {
        let tx = tx.clone();
        readers += 1;
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            break;
                        }
                    }
                }
            }
            // An empty chunk says this stream ended.
            let _ = tx.send(Vec::new());
        });
    }
    drop(tx);
    let mut output = Vec::new();
    let mut collect = |chunk: Vec<u8>, ended: &mut usize| {
        if chunk.is_empty() {
            *ended += 1;
        } else if output.len() < OUTPUT_MAX {
            let room = OUTPUT_MAX - output.len();
            output.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    };
    let mut ended = 0;
    let deadline = started + timeout;
    let mut timed_out = false;
    let status = loop {
        while let Ok(chunk) = rx.try_recv() {
            collect(chunk, &mut ended);
        }
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let pgid = rustix::process::Pid::from_child(&child);
            if let Err(e) = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL)
            {
                log::warn!("{program}: cannot kill its process group: {e}");
                let _ = child.kill();
            }
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Collect what is left; a stream still held open by a leftover process is not waited
    // for beyond a moment.
    let drain_until = Instant::now() + Duration::from_millis(500);
    while ended < readers {
        let left = drain_until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => collect(chunk, &mut ended),
            Err(_) => break,
        }
    }
    ScriptRun {
        exit: if timed_out {
            None
        } else {
            status.and_then(|s| s.code())
        },
        timed_out,
        output: String::from_utf8_lossy(&output).into_owned(),
        duration: started.elapsed(),
        error: None,
    }
}
