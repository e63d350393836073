//! What a report records so that its run can be reproduced from it alone: the command
//! line, the overrides and profile, when and where it ran, and the git commit of the
//! pipeline's repository.

use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provenance {
    /// The command line as given (`flowline run ...`); empty when called as a library.
    pub command: Vec<String>,
    /// `--set` overrides, in order.
    pub overrides: Vec<String>,
    /// RFC 3339, UTC, to the second.
    pub started: String,
    pub host: String,
    /// The pipeline's repository, when it has one.
    pub git: Option<Git>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Git {
    pub commit: String,
    /// Tracked files differ from the commit.
    pub dirty: bool,
}

impl Provenance {
    pub fn now(command: &[String], overrides: &[String], pipeline: &Path) -> Self {
        Provenance {
            command: command.to_vec(),
            overrides: overrides.to_vec(),
            started: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            git: git_of(pipeline),
        }
    }
}

/// The commit checked out where the pipeline file lives; `None` outside a repository or
/// without git.
fn git_of(pipeline: &Path) -> Option<Git> {
    let dir = match pipeline.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").arg("-C").arg(dir).args(args).output().ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"])?;
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(Git { commit, dirty })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_inside_a_repository_records_its_commit_and_outside_none() {
        let Ok(out) = Command::new("git").arg("--version").output() else { return };
        if !out.status.success() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let pipeline = dir.path().join("p.flow");
        std::fs::write(&pipeline, "seed 1\n").unwrap();
        assert_eq!(git_of(&pipeline), None);
        let run = |args: &[&str]| {
            let ok = Command::new("git").arg("-C").arg(dir.path()).args(args).output().unwrap().status.success();
            assert!(ok, "git {args:?}");
        };
        run(&["init", "-q"]);
        run(&["add", "p.flow"]);
        run(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x"]);
        let g = git_of(&pipeline).unwrap();
        assert_eq!(g.commit.len(), 40);
        assert!(!g.dirty);
        std::fs::write(&pipeline, "seed 2\n").unwrap();
        assert!(git_of(&pipeline).unwrap().dirty);
        let p = Provenance::now(&["flowline".into(), "run".into()], &["fit.iters=3".into()], &pipeline);
        assert!(p.started.ends_with('Z') && p.started.len() == 20, "{}", p.started);
        assert!(!p.host.is_empty());
    }
}
