//! The sandbox every preview subprocess (LibreOffice, pdftoppm) runs in. With bubblewrap
//! (`bwrap`, the default): new user, pid, network, ipc, uts and cgroup namespaces (no network
//! but an unconfigured loopback), uid/gid 65534 without capabilities, a fresh `/proc`,
//! `/dev` and `/tmp`, read-only `/usr` and the few files under `/etc` and `/var` LibreOffice
//! and fontconfig need, the step's input bound read-only at `/input/<name>`, and one fresh
//! folder of the job bound at `/job` as the only writable place (its home, its LibreOffice
//! profile and its output). Nothing of the worker's environment, configuration file or
//! credentials is inside: `bwrap` itself is started with an empty environment (its own
//! pid 1 in the sandbox would otherwise show the worker's environment at
//! `/proc/1/environ`). Around it, as without a sandbox, `prlimit` (address space, CPU,
//! file size, open files, no core dumps) and `timeout -k 5` (wall clock; it kills its
//! process group, and bwrap's `--die-with-parent` takes the whole sandbox with it).
//!
//! `preview_sandbox = "none"` runs the programs without bubblewrap (same limits, a clean
//! environment), for hosts that cannot make user namespaces and accept the risk.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::{PreviewSettings, Tools};

/// Uid and gid of the converter inside the sandbox ("nobody").
const NOBODY: &str = "65534";
/// Where the step's writable folder appears inside the sandbox.
const WORK: &str = "/job";
/// Where the step's input appears inside the sandbox (as `/input/<file name>`).
const INPUT: &str = "/input";
/// Largest output file a subprocess may write.
const MAX_OUTPUT: u64 = 512 * 1024 * 1024;
/// Read-only binds besides `/usr`, when the host has them: fonts and their cache, the
/// dynamic linker's cache, Debian's alternatives and LibreOffice's configuration (its
/// `share/registry` links to `/etc/libreoffice`). Never `/etc` as a whole.
const READ_ONLY: &[&str] = &[
    "/etc/fonts",
    "/etc/alternatives",
    "/etc/libreoffice",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/var/cache/fontconfig",
    "/var/lib/libreoffice",
    "/var/spool/libreoffice",
];
/// Top-level folders that merged-/usr systems make links into `/usr`.
const USR_LINKS: &[&str] = &["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"];
/// The search path a converter gets.
const PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// How conversions are isolated: the `preview_sandbox` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    /// bubblewrap namespaces (the default); without a working `bwrap`, PDF and office
    /// files are not previewed.
    #[default]
    Bwrap,
    /// No sandbox beyond `prlimit` and `timeout`: only when an operator says so.
    None,
}

impl Isolation {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bwrap" => Some(Self::Bwrap),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// What this machine's sandbox is, found once at start (`Tools::detect`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sandbox {
    /// `bwrap` at this path made a sandbox when tried.
    Bwrap(PathBuf),
    /// `preview_sandbox = "none"`: programs run without one.
    Off,
    /// A sandbox was asked for and cannot be made here (the reason).
    Unusable(String),
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::Unusable("not looked for".into())
    }
}

impl Sandbox {
    /// Looks for `bwrap` (when `isolation` asks for it) and tries it once with `true`.
    pub fn detect(isolation: Isolation, bwrap: Option<PathBuf>) -> Self {
        if isolation == Isolation::None {
            return Self::Off;
        }
        let Some(bwrap) = bwrap else {
            return Self::Unusable("bwrap is missing (install bubblewrap)".into());
        };
        match probe(&bwrap) {
            Ok(()) => Self::Bwrap(bwrap),
            Err(why) => Self::Unusable(format!("bwrap cannot make a sandbox here: {why}")),
        }
    }

    /// Whether subprocesses may run (in a sandbox, or without one when configured so).
    pub fn usable(&self) -> bool {
        !matches!(self, Self::Unusable(_))
    }
}

/// Runs `true` in a sandbox as conversions get it: user namespaces may be off (sysctl,
/// a container's seccomp profile), or this bwrap may lack an option.
fn probe(bwrap: &Path) -> Result<(), String> {
    let work = tempfile::Builder::new()
        .prefix("campus-sandbox-probe-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(bwrap)
        .args(bwrap_args(
            work.path(),
            None,
            Path::new("/usr/bin/true"),
            &[],
        ))
        .env_clear()
        .env("PATH", PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            if status.success() {
                return Ok(());
            }
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            return Err(format!("{status}: {}", err.trim()));
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("no answer in 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A step's paths as the program sees them.
#[derive(Debug, Clone)]
pub struct Inside {
    /// The input file (read-only).
    pub input: PathBuf,
    /// The writable folder: home, scratch, LibreOffice profile, output.
    pub work: PathBuf,
}

impl Inside {
    fn bwrap(input: Option<&Path>) -> Self {
        Self {
            input: input
                .and_then(Path::file_name)
                .map(|n| Path::new(INPUT).join(n))
                .unwrap_or_default(),
            work: PathBuf::from(WORK),
        }
    }
}

/// One step of a conversion.
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// The program (on the host; under `/usr`, so the same path inside).
    pub program: &'a Path,
    /// The file it reads (bound read-only), if any.
    pub input: Option<&'a Path>,
    /// A fresh, empty folder of the job: the only place the step can write, and where
    /// its output is collected from once the sandbox is gone.
    pub work: &'a Path,
}

fn strs(xs: &[&str]) -> Vec<OsString> {
    xs.iter().map(OsString::from).collect()
}

/// bwrap's arguments for one step, up to and including the program and its arguments.
fn bwrap_args(
    work: &Path,
    input: Option<&Path>,
    program: &Path,
    args: &[OsString],
) -> Vec<OsString> {
    let mut a: Vec<OsString> = strs(&[
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--uid",
        NOBODY,
        "--gid",
        NOBODY,
        "--hostname",
        "preview",
        "--ro-bind",
        "/usr",
        "/usr",
    ]);
    for dir in USR_LINKS {
        let p = Path::new(dir);
        match std::fs::read_link(p) {
            Ok(target) => a.extend(["--symlink".into(), target.into(), p.into()]),
            Err(_) if p.is_dir() => a.extend(["--ro-bind".into(), p.into(), p.into()]),
            Err(_) => {}
        }
    }
    for p in READ_ONLY {
        a.extend(strs(&["--ro-bind-try", *p, *p]));
    }
    a.extend(strs(&[
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
    ]));
    a.extend(["--bind".into(), work.into(), WORK.into()]);
    if let Some(input) = input {
        let inside = Inside::bwrap(Some(input)).input;
        a.extend(["--ro-bind".into(), input.into(), inside.into()]);
    }
    a.extend(strs(&[
        "--chdir",
        WORK,
        "--clearenv",
        "--setenv",
        "PATH",
        PATH,
        "--setenv",
        "HOME",
        WORK,
        "--setenv",
        "TMPDIR",
        WORK,
        "--setenv",
        "LANG",
        "C.UTF-8",
        "--",
    ]));
    a.push(program.into());
    a.extend(args.iter().cloned());
    a
}

/// The whole command line of a step (`prlimit … -- timeout … [bwrap … --] program args`)
/// and the paths the program is told about.
fn command_line(
    tools: &Tools,
    s: &PreviewSettings,
    step: Step<'_>,
    args: impl FnOnce(&Inside) -> Vec<OsString>,
) -> Result<(Vec<OsString>, Inside), String> {
    let (Some(prlimit), Some(timeout)) = (&tools.prlimit, &tools.timeout) else {
        return Err("sandbox tools (prlimit, timeout) are missing".into());
    };
    let secs = s.timeout.as_secs().max(1);
    let mut line: Vec<OsString> = vec![
        prlimit.into(),
        format!("--as={}", s.memory_bytes).into(),
        format!("--cpu={secs}").into(),
        format!("--fsize={MAX_OUTPUT}").into(),
        "--nofile=512".into(),
        "--core=0".into(),
        "--".into(),
        timeout.into(),
        "-k".into(),
        "5".into(),
        secs.to_string().into(),
    ];
    let inside = match &tools.sandbox {
        Sandbox::Bwrap(bwrap) => {
            let inside = Inside::bwrap(step.input);
            let args = args(&inside);
            line.push(bwrap.into());
            line.extend(bwrap_args(step.work, step.input, step.program, &args));
            inside
        }
        Sandbox::Off => {
            let inside = Inside {
                input: step.input.map(Path::to_path_buf).unwrap_or_default(),
                work: step.work.to_path_buf(),
            };
            line.push(step.program.into());
            line.extend(args(&inside));
            inside
        }
        Sandbox::Unusable(why) => return Err(format!("no sandbox for conversions: {why}")),
    };
    Ok((line, inside))
}

/// Runs one step in the sandbox and waits for it. `args` gets the paths as the program
/// sees them. The output is whatever the step left in `step.work`: read it with
/// [`output_file`], which refuses links.
pub async fn run(
    tools: &Tools,
    s: &PreviewSettings,
    step: Step<'_>,
    args: impl FnOnce(&Inside) -> Vec<OsString>,
) -> Result<(), String> {
    let (line, inside) = command_line(tools, s, step, args)?;
    let secs = s.timeout.as_secs().max(1);
    let mut cmd = tokio::process::Command::new(&line[0]);
    cmd.args(&line[1..])
        .current_dir(step.work)
        // Not one variable of the worker's: bwrap's own pid 1 in the sandbox keeps the
        // environment bwrap was started with, readable at /proc/1/environ.
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", &inside.work)
        .env("TMPDIR", &inside.work)
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let name = step
        .program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = tokio::time::timeout(s.timeout + Duration::from_secs(10), cmd.output())
        .await
        .map_err(|_| format!("{name} did not finish in time"))?
        .map_err(|e| format!("{name} could not start: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(()),
        Some(124) | Some(137) => Err(format!("{name} did not finish in {secs} s")),
        _ => {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: String = err
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err(format!("{name} failed ({}): {}", out.status, tail.trim()))
        }
    }
}

/// Whether `path` is a plain file a finished step left (not a link a hostile converter
/// made to something of the worker's). Nothing runs in the sandbox any more once [`run`]
/// has returned, so the answer cannot be raced.
pub fn is_plain_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// A plain file a finished step left, of at most `max` bytes.
pub fn output_file(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("no output: {e}"))?;
    if !meta.file_type().is_file() {
        return Err("the converter's output is not a plain file".into());
    }
    if meta.len() > max {
        return Err(format!(
            "the converter's output is larger than {} MB",
            max / 1024 / 1024
        ));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

/// A fresh, empty folder `name` in the job's folder, for one step.
pub fn fresh_folder(job: &Path, name: &str) -> Result<PathBuf, String> {
    let dir = job.join(name);
    std::fs::create_dir(&dir).map_err(|e| format!("making {name}: {e}"))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tools(sandbox: Sandbox) -> Tools {
        Tools {
            prlimit: Some("/usr/bin/prlimit".into()),
            timeout: Some("/usr/bin/timeout".into()),
            sandbox,
            ..Tools::default()
        }
    }

    #[test]
    fn the_sandbox_shares_nothing_writable_but_the_job_folder() {
        let t = tools(Sandbox::Bwrap("/usr/bin/bwrap".into()));
        let (line, inside) = command_line(
            &t,
            &PreviewSettings::default(),
            Step {
                program: Path::new("/usr/bin/pdftoppm"),
                input: Some(Path::new("/scratch/job-1/office/document.pdf")),
                work: Path::new("/scratch/job-1/pages"),
            },
            |i| vec![i.input.clone().into(), i.work.join("page").into()],
        )
        .unwrap();
        let line: Vec<String> = line
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let at = |s: &str| line.iter().position(|a| a == s);
        assert_eq!(at("/usr/bin/prlimit"), Some(0));
        assert!(at("/usr/bin/timeout") < at("/usr/bin/bwrap"));
        for flag in [
            "--unshare-all",
            "--unshare-user",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
        ] {
            assert!(at(flag).is_some(), "{flag}");
        }
        let bind = at("--bind").unwrap();
        assert_eq!(line[bind + 1..bind + 3], ["/scratch/job-1/pages", "/job"]);
        assert_eq!(
            line.iter().filter(|a| *a == "--bind").count(),
            1,
            "one writable bind"
        );
        assert!(!line
            .iter()
            .any(|a| a == "/etc" || a == "/home" || a == "/root"));
        assert_eq!(inside.input, Path::new("/input/document.pdf"));
        let dashes = line.iter().rposition(|a| a == "--").unwrap();
        assert_eq!(
            line[dashes + 1..],
            ["/usr/bin/pdftoppm", "/input/document.pdf", "/job/page"]
        );

        let refused = command_line(
            &tools(Sandbox::Unusable("bwrap is missing".into())),
            &PreviewSettings::default(),
            Step {
                program: Path::new("/usr/bin/true"),
                input: None,
                work: Path::new("/tmp"),
            },
            |_| Vec::new(),
        );
        assert!(refused.is_err(), "no sandbox, no subprocess");
    }
}
