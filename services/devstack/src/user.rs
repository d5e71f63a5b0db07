//! Postgres and PgBouncer refuse to run as root. When we are root we run them as an
//! unprivileged system user instead: `postgres` if the machine has one, else `nobody`.

use std::path::Path;
use std::process::Command;

use nix::unistd::{Uid, User};

#[derive(Clone, Debug)]
pub(crate) struct RunAs {
    pub uid: u32,
    pub gid: u32,
    pub name: String,
}

/// `None` when we are not root (run as ourselves).
pub(crate) fn unprivileged() -> anyhow::Result<Option<RunAs>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    for name in ["postgres", "nobody"] {
        if let Some(u) = User::from_name(name)? {
            return Ok(Some(RunAs {
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
                name: name.to_owned(),
            }));
        }
    }
    anyhow::bail!(
        "running as root, and neither a 'postgres' nor a 'nobody' user exists to run Postgres as"
    )
}

impl RunAs {
    /// Gives `path` (recursively) to this user.
    pub(crate) fn own(&self, path: &Path) -> anyhow::Result<()> {
        let status = Command::new("chown")
            .arg("-R")
            .arg(format!("{}:{}", self.uid, self.gid))
            .arg(path)
            .status()?;
        anyhow::ensure!(status.success(), "chown of {} failed", path.display());
        Ok(())
    }

    /// Whether this user can reach `path` (every parent folder must be searchable).
    pub(crate) fn can_reach(&self, path: &Path) -> bool {
        let mut cmd = Command::new("test");
        cmd.arg("-x").arg(path);
        self.apply(&mut cmd);
        cmd.status().is_ok_and(|s| s.success())
    }

    pub(crate) fn apply(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        cmd.uid(self.uid).gid(self.gid);
        // HOME of root is not readable by the user; point tools at a neutral place.
        cmd.env("HOME", "/tmp");
    }

    pub(crate) fn apply_tokio(&self, cmd: &mut tokio::process::Command) {
        cmd.uid(self.uid).gid(self.gid);
        cmd.env("HOME", "/tmp");
    }
}
