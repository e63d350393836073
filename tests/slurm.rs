//! `--executor slurm` against a real single-node Slurm cluster that this test starts on the
//! machine (scripts/slurm-local.sh: Debian's slurmctld, slurmd, slurm-client and munge, run
//! as root) and stops at the end. Where Slurm is not installed, or the test is not root, it
//! skips with the reason printed (`.ci/run` installs the packages).
//!
//! One test, so that one cluster serves every case in turn: the sweep pipeline gives the
//! numbers of `--jobs 1` and `--jobs 2`; re-submitting runs nothing; a failing stage is
//! reported with its log and its dependants are cancelled; Ctrl-C cancels the jobs.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    /// Starts the cluster, or says why it cannot.
    fn start(dir: &Path) -> Result<Cluster, String> {
        let script = common::root().join("scripts/slurm-local.sh");
        let o = Command::new(&script).arg("start").arg(dir).output().map_err(|e| e.to_string())?;
        if !o.status.success() {
            return Err(format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)));
        }
        Ok(Cluster { dir: dir.to_path_buf(), conf: dir.join("slurm.conf") })
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf).current_dir(common::root());
        c
    }

    fn flowline(&self, args: &[&str]) -> Output {
        self.command(env!("CARGO_BIN_EXE_flowline")).args(args).output().unwrap()
    }

    /// This user's jobs still queued or running.
    fn queue(&self) -> String {
        let o = self.command("squeue").args(["--me", "-h", "-o", "%i %T %j"]).output().unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let script = common::root().join("scripts/slurm-local.sh");
        let _ = Command::new(script).arg("stop").arg(&self.dir).status();
    }
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).to_string(), String::from_utf8_lossy(&o.stderr).to_string())
}

/// The reported numbers a run printed (`name: value` lines).
fn numbers(o: &Output) -> Vec<String> {
    let (out, err) = text(o);
    assert!(o.status.success(), "{err}");
    out.lines().filter(|l| !l.starts_with("report:")).map(str::to_string).collect()
}

fn report(out: &Path) -> flowline::yaml::Value {
    flowline::yaml::from_str(&std::fs::read_to_string(out.join("report.yaml")).unwrap()).unwrap()
}

#[test]
fn slurm_runs_give_local_numbers_resubmit_nothing_and_cancel_what_fails_or_is_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let cluster = match Cluster::start(&tmp.path().join("cluster")) {
        Ok(c) => c,
        Err(why) => {
            println!("slurm test skipped: no local Slurm cluster could be started: {}", why.trim());
            return;
        }
    };
    let out = |name: &str| tmp.path().join(name).display().to_string();

    // The sweep pipeline: the same numbers one stage at a time, two at a time, and as jobs.
    let run = |name: &str, extra: &[&str]| {
        let o = out(name);
        let mut args = vec!["run", "pipelines/sweep.flow", "--profile", "smoke", "--out", o.as_str()];
        args.extend_from_slice(extra);
        cluster.flowline(&args)
    };
    let one = numbers(&run("one", &["--jobs", "1"]));
    let two = numbers(&run("two", &["--jobs", "2"]));
    let started = Instant::now();
    let jobs = run("slurm", &["--executor", "slurm"]);
    let slurm_secs = started.elapsed().as_secs_f64();
    assert_eq!(one, two);
    assert_eq!(numbers(&jobs), one, "{}", text(&jobs).1);
    assert!(one.iter().any(|l| l.starts_with("score[lam=10,seed=2].accuracy: ")), "{one:?}");
    let r = report(Path::new(&out("slurm")));
    assert_eq!(r["stages"]["fit[lam=1,seed=1]"]["status"].as_str(), Some("executed"));
    assert!(Path::new(&out("slurm")).join(".flowline/logs/fit[lam=1,seed=1].log").is_file());
    println!("sweep smoke as Slurm jobs: {slurm_secs:.1} s");

    // Re-submitting: everything is cached, no job is submitted.
    let again = run("slurm", &["--executor", "slurm"]);
    assert_eq!(numbers(&again), one);
    assert!(!text(&again).1.contains("submitted as job"), "{}", text(&again).1);
    let r = report(Path::new(&out("slurm")));
    assert_eq!(r["stages"]["fit[lam=1,seed=1]"]["status"].as_str(), Some("cached"));

    // A failing stage: its error and log tail, its dependants cancelled, the rest run.
    let file = tmp.path().join("failing.flow");
    std::fs::write(&file, common::FAILING_PIPELINE).unwrap();
    let failing_out = out("failing");
    let o = cluster.flowline(&["run", file.to_str().unwrap(), "--out", &failing_out, "--executor", "slurm"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("R2001") && err.contains("the end of the job's log"), "{err}");
    let r = report(Path::new(&failing_out));
    assert_eq!(r["stages"]["fit"]["status"].as_str(), Some("failed"));
    assert_eq!(r["stages"]["score"]["status"].as_str(), Some("skipped"));
    assert!(r["stages"]["score"]["note"].as_str().unwrap().contains("cancelled"), "{r:?}");
    assert_eq!(r["stages"]["points"]["status"].as_str(), Some("executed"));
    assert_eq!(cluster.queue(), "", "no job is left waiting on the failed one");

    // Ctrl-C while a long stage runs: its job is cancelled, the report says so.
    let long = tmp.path().join("long.flow");
    std::fs::write(
        &long,
        "let data = toy2d(\"moons\", n: 2000)\n\
         let fit = train(linear(256) |> relu |> linear(256) |> relu |> linear(2), data, batch: 2000, iters: 1000000)\n\
         report fit\n",
    )
    .unwrap();
    let long_out = out("long");
    let mut child = cluster
        .command(env!("CARGO_BIN_EXE_flowline"))
        .args(["run", long.to_str().unwrap(), "--out", &long_out, "--executor", "slurm"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cluster.queue().contains("RUNNING flowline:fit") {
        assert!(Instant::now() < deadline, "the long job never ran: {}", cluster.queue());
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cluster.queue().is_empty() {
        assert!(Instant::now() < deadline, "jobs left after Ctrl-C: {}", cluster.queue());
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = report(Path::new(&long_out));
    assert_eq!(r["stages"]["fit"]["status"].as_str(), Some("failed"));
    assert!(r["stages"]["fit"]["error"].as_str().unwrap().contains("interrupted"), "{r:?}");
}
