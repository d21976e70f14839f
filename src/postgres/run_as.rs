//! Who runs PostgreSQL's programs: the current user, or, when that is root, an
//! unprivileged account (initdb refuses to run as root).

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::unistd::{Uid, User};

#[derive(Clone, Debug)]
pub struct RunAs {
    user: Option<User>,
}

impl RunAs {
    /// The current user, unless it is root: then `postgres`, else `nobody`.
    pub fn detect() -> Result<Self, String> {
        if !Uid::effective().is_root() {
            return Ok(Self { user: None });
        }
        for name in ["postgres", "nobody"] {
            if let Ok(Some(user)) = User::from_name(name) {
                return Ok(Self { user: Some(user) });
            }
        }
        Err("running as root, and neither a `postgres` nor a `nobody` user exists to run PostgreSQL".into())
    }

    pub fn name(&self) -> String {
        self.user
            .as_ref()
            .map_or_else(|| "the current user".to_owned(), |u| u.name.clone())
    }

    /// A command that will run as this user (std drops supplementary groups as it switches).
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        if let Some(user) = &self.user {
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        command
    }

    /// Hands a file or folder we created to this user.
    pub fn give(&self, path: &Path) -> std::io::Result<()> {
        match &self.user {
            Some(user) => {
                std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            }
            None => Ok(()),
        }
    }

    /// Hands a file we just created to this user, through its open handle.
    pub fn give_file(&self, file: &std::fs::File) -> std::io::Result<()> {
        match &self.user {
            Some(user) => {
                std::os::unix::fs::fchown(file, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            }
            None => Ok(()),
        }
    }

    /// Whether this user can reach `path` (every existing ancestor searchable by it).
    pub fn can_traverse(&self, path: &Path) -> bool {
        let Some(user) = &self.user else { return true };
        path.ancestors()
            .filter_map(|dir| std::fs::metadata(dir).ok())
            .all(|meta| {
                let mode = meta.mode();
                if meta.uid() == user.uid.as_raw() {
                    mode & 0o100 != 0
                } else if meta.gid() == user.gid.as_raw() {
                    mode & 0o010 != 0
                } else {
                    mode & 0o001 != 0
                }
            })
    }
}
