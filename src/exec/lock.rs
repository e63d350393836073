//! One run per output folder. The lock is the operating system's advisory file lock on
//! `<out>/.flowline.lock`, so it is released on any exit of the process, a crash or a kill
//! included; the file holds the owner's pid so that a second run can say who holds it.

use crate::diag::{Code, Diag};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

pub const FILE: &str = ".flowline.lock";

/// Held for the whole run; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    pub fn acquire(out: &Path) -> Result<RunLock, Diag> {
        let path = out.join(FILE);
        let cannot = |e: std::io::Error| {
            Diag::new(Code::R1001, format!("cannot create the lock file {}: {e}", path.display()))
                .hint("check that the output folder (`--out`) is writable")
        };
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(cannot)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let owner = match text.trim().parse::<u32>() {
                    Ok(pid) => format!("another flowline run (pid {pid})"),
                    Err(_) => "another flowline run".to_string(),
                };
                return Err(Diag::new(Code::R1005, format!("{owner} is writing into {}", out.display()))
                    .hint("wait for it to finish, or give this run another output folder with `--out DIR`"));
            }
            Err(TryLockError::Error(e)) => return Err(cannot(e)),
        }
        let _ = file.set_len(0).and_then(|_| file.rewind()).and_then(|_| write!(file, "{}", std::process::id()));
        Ok(RunLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_folder_names_the_holder_and_the_first_release_frees_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(dir.path()).unwrap();
        let err = RunLock::acquire(dir.path()).unwrap_err();
        assert_eq!(err.code, Code::R1005);
        assert!(err.message.contains(&format!("pid {}", std::process::id())), "{}", err.message);
        drop(first);
        assert!(RunLock::acquire(dir.path()).is_ok());
    }
}
