//! Previews: the worker role that makes them (`worker`), the conversions (`convert`), the
//! sandbox their subprocesses run in (`sandbox`), the viewer's-name watermark (`watermark`)
//! and the pages that show them (`page`). `Tools` finds the external programs and tries the
//! sandbox at start so the instance can say which kinds it can preview.

pub mod convert;
pub mod page;
pub mod sandbox;
pub mod watermark;
pub mod worker;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::sniff::Kind;
use sandbox::{Isolation, Sandbox};

/// Limits of one conversion.
#[derive(Clone, Debug)]
pub struct PreviewSettings {
    /// Conversions run at once by this instance (one per core by default).
    pub workers: usize,
    /// Wall-clock limit of one conversion step (LibreOffice, pdftoppm, image decoding).
    pub timeout: Duration,
    /// Address-space limit of a conversion subprocess.
    pub memory_bytes: u64,
    /// Pages rendered at most (the rest of a long document is left to the download).
    pub max_pages: u32,
    /// Originals larger than this are not previewed (images are decoded in memory).
    pub max_image_bytes: u64,
    /// How subprocesses are isolated (`preview_sandbox`).
    pub sandbox: Isolation,
}

impl Default for PreviewSettings {
    fn default() -> Self {
        Self {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            timeout: Duration::from_secs(60),
            memory_bytes: 2048 * 1024 * 1024,
            max_pages: 30,
            max_image_bytes: 40 * 1024 * 1024,
            sandbox: Isolation::Bwrap,
        }
    }
}

/// The external programs previews need, found on `PATH`.
#[derive(Clone, Debug, Default)]
pub struct Tools {
    pub pdftoppm: Option<PathBuf>,
    pub soffice: Option<PathBuf>,
    /// util-linux `prlimit` (memory and CPU limits) and coreutils `timeout` (wall clock,
    /// kills the whole process group): without both, no subprocess runs at all.
    pub prlimit: Option<PathBuf>,
    pub timeout: Option<PathBuf>,
    /// bubblewrap, tried once at start (or off when `preview_sandbox = "none"`): without a
    /// usable sandbox, no subprocess runs at all.
    pub sandbox: Sandbox,
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

impl Tools {
    /// Finds the programs on `PATH` and, unless `isolation` is `None`, tries bwrap.
    pub fn detect(isolation: Isolation) -> Self {
        Self {
            pdftoppm: which("pdftoppm"),
            soffice: which("soffice").or_else(|| which("libreoffice")),
            prlimit: which("prlimit"),
            timeout: which("timeout"),
            sandbox: Sandbox::detect(isolation, which("bwrap")),
        }
    }

    /// Whether subprocesses may run: limits, and a sandbox (or an explicit "none").
    fn subprocesses(&self) -> bool {
        self.prlimit.is_some() && self.timeout.is_some() && self.sandbox.usable()
    }

    /// Whether this instance can preview files of `kind`.
    pub fn can(&self, kind: Kind) -> bool {
        match kind {
            Kind::Image => true,
            Kind::Pdf => self.subprocesses() && self.pdftoppm.is_some(),
            Kind::Office => {
                self.subprocesses() && self.pdftoppm.is_some() && self.soffice.is_some()
            }
            Kind::Other => false,
        }
    }

    /// One line for the start-up log: what can be previewed, how conversions are
    /// isolated, and what is missing.
    pub fn describe(&self) -> String {
        let mut yes = vec!["images"];
        let mut missing = Vec::new();
        if self.prlimit.is_none() || self.timeout.is_none() {
            missing.push(
                "prlimit/timeout (util-linux, coreutils): no PDF or office previews".to_owned(),
            );
        } else if let Sandbox::Unusable(why) = &self.sandbox {
            missing.push(format!(
                "sandbox ({why}): no PDF or office previews (preview_sandbox = \"none\" converts without one)"
            ));
        } else if self.pdftoppm.is_none() {
            missing.push("pdftoppm (poppler-utils): no PDF or office previews".to_owned());
        }
        if self.can(Kind::Pdf) {
            yes.push("PDF");
        }
        if self.can(Kind::Office) {
            yes.push("Word/WPS/Excel/PowerPoint/OpenDocument");
        } else if self.soffice.is_none() {
            missing.push("soffice (LibreOffice): no Word/WPS/Excel/PowerPoint previews".to_owned());
        }
        let mut line = format!("previews available: {}", yes.join(", "));
        line.push_str(match &self.sandbox {
            Sandbox::Bwrap(_) => {
                "; conversions sandboxed by bwrap (no network, no worker environment, a folder per job)"
            }
            Sandbox::Off => {
                "; conversions NOT sandboxed (preview_sandbox = \"none\"): they run as this user with its network"
            }
            Sandbox::Unusable(_) => "",
        });
        if !missing.is_empty() {
            line.push_str(&format!("; missing: {}", missing.join("; ")));
        }
        line
    }
}
