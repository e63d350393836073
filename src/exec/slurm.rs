//! `--executor slurm`: each stage that is not cached is one Slurm job running `flowline
//! worker` on the serialised plan, submitted in plan order with `--dependency=afterok:` on
//! the jobs of the stages it needs, asking for its `resources`. The run folder (on the
//! cluster's shared file system) is the hand-off between jobs. The run follows its jobs with
//! `squeue`, and `scontrol` for how one ended (accounting may be off); a failure is reported
//! with the job's log tail and its dependants are cancelled; Ctrl-C cancels every job the
//! run submitted. Re-submitting skips what is cached.

use super::executor::{Executor, Outcome, skip_note};
use super::job::{self, Failure, JobFile};
use super::session::Session;
use crate::diag::{Code, Diag};
use crate::lang::Resources;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set by the command line's Ctrl-C handler: cancel what was submitted and stop.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Lines of a failed job's log shown with its error.
const LOG_TAIL: usize = 15;

pub struct Slurm {
    /// The flowline executable the jobs run.
    pub worker: PathBuf,
    /// The folder holding `sbatch`, `squeue`, `scontrol` and `scancel` (else found on PATH).
    pub bin: Option<PathBuf>,
    /// How often the queue is read.
    pub poll: Duration,
}

/// A submitted job.
struct Job {
    id: String,
    node: usize,
    submitted: Instant,
}

impl Slurm {
    fn command(&self, name: &str) -> Command {
        Command::new(self.bin.as_ref().map_or_else(|| PathBuf::from(name), |b| b.join(name)))
    }

    /// Runs a Slurm command; its standard output, or what went wrong.
    fn call(&self, name: &str, args: &[String]) -> Result<String, String> {
        let o = self.command(name).args(args).output().map_err(|e| format!("cannot start `{name}`: {e}"))?;
        if o.status.success() {
            Ok(String::from_utf8_lossy(&o.stdout).to_string())
        } else {
            let err = String::from_utf8_lossy(&o.stderr);
            Err(format!("`{name}` failed ({}): {}", o.status, err.trim()))
        }
    }

    fn cancel(&self, ids: &[&str]) {
        if !ids.is_empty() {
            let _ = self.call("scancel", &ids.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        }
    }

    /// The jobs of this user still in the queue, with their state.
    fn queue(&self) -> Result<BTreeMap<String, String>, String> {
        let text = self.call("squeue", &["--me".into(), "-h".into(), "-o".into(), "%i %T".into()])?;
        Ok(text.lines().filter_map(|l| l.split_once(' ').map(|(i, s)| (i.to_string(), s.trim().to_string()))).collect())
    }

    /// How a job that left the queue ended, as `scontrol` still knows it.
    fn final_state(&self, id: &str) -> String {
        match self.call("scontrol", &["show".into(), "job".into(), "-o".into(), id.into()]) {
            Ok(text) => {
                let field = |k: &str| text.split_whitespace().find_map(|w| w.strip_prefix(k)).map(str::to_string);
                match (field("JobState="), field("Reason=")) {
                    (Some(s), Some(r)) if r != "None" => format!("{s} ({r})"),
                    (Some(s), _) => s,
                    _ => "unknown".into(),
                }
            }
            Err(_) => "no longer known to the scheduler".into(),
        }
    }

    /// The job script of stage `name`: `flowline worker` with the CPUs Slurm gave as its
    /// thread count.
    fn script(&self, out: &Path, name: &str) -> String {
        let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
        format!(
            "#!/bin/sh\n# flowline: stage `{name}` of the run in {out}\n\
             export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-1}}\"\n\
             exec {} worker {} --stage {}\n",
            q(&self.worker.display().to_string()),
            q(&out.display().to_string()),
            q(name),
            out = out.display(),
        )
    }

    fn submit(&self, out: &Path, name: &str, after: &[&str], resources: &Resources) -> Result<String, String> {
        let scripts = job::control_dir(out).join("jobs");
        std::fs::create_dir_all(&scripts).map_err(|e| e.to_string())?;
        let script = scripts.join(format!("{name}.sh"));
        std::fs::write(&script, self.script(out, name))
            .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
        let _ = std::fs::remove_file(job::failure_file(out, name));
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name=flowline:{name}"),
            format!("--output={}", job::log_file(out, name).display()),
            "--kill-on-invalid-dep=yes".into(),
        ];
        if let Ok(here) = std::env::current_dir() {
            args.push(format!("--chdir={}", here.display()));
        }
        if !after.is_empty() {
            args.push(format!("--dependency=afterok:{}", after.join(":")));
        }
        args.extend(resources.sbatch_options());
        args.push(script.display().to_string());
        let text = self.call("sbatch", &args)?;
        // `--parsable` prints `id` or `id;cluster`.
        let id = text.trim().split(';').next().unwrap_or("").to_string();
        if id.is_empty() { Err(format!("`sbatch` printed no job id: {text:?}")) } else { Ok(id) }
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

impl Executor for Slurm {
    fn execute(&self, session: &Session, selection: &[usize]) -> Vec<Option<Outcome>> {
        let nodes = session.nodes();
        let total = selection.len();
        let mut outcomes: Vec<Option<Outcome>> = (0..nodes.len()).map(|_| None).collect();
        let out = absolute(&session.opts.out);
        let job = JobFile {
            plan: session.plan.clone(),
            // As given: it is part of every cache key. Jobs start in this folder (`--chdir`).
            data_dir: session.opts.data_dir.clone(),
            device: super::device_name(&session.device).to_string(),
            force: session.opts.force,
        };
        if let Err(d) = job::write_job_file(&out, &job) {
            for &i in selection {
                outcomes[i] = Some(Outcome::Failed { diag: d.clone(), secs: 0.0 });
            }
            return outcomes;
        }
        let defaults = session.plan.checked.resources.clone().unwrap_or_default();
        let mut ended = 0;
        // Why a stage has no result: its own failure, or that of one it needs.
        let mut broken: Vec<Option<String>> = vec![None; nodes.len()];
        let mut jobs: Vec<Job> = Vec::new();
        for &i in selection {
            let node = &nodes[i];
            if !session.opts.force
                && let Some(done) = session.from_cache(i)
            {
                session.announce(ended, total, node, done.status);
                ended += 1;
                outcomes[i] = Some(Outcome::Done { done: Box::new(done), secs: 0.0 });
                continue;
            }
            if let Some(&d) = node.deps.iter().find(|&&d| broken[d].is_some()) {
                let why = broken[d].clone().unwrap_or_default();
                let note = skip_note(&nodes[d].name, &why);
                session.announce(ended, total, node, &format!("skipped ({note})"));
                ended += 1;
                broken[i] = Some(why);
                outcomes[i] = Some(Outcome::Skipped { note });
                continue;
            }
            let after: Vec<&str> = jobs.iter().filter(|j| node.deps.contains(&j.node)).map(|j| j.id.as_str()).collect();
            let resources = node.resources.clone().unwrap_or_default().over(&defaults);
            match self.submit(&out, &node.name, &after, &resources) {
                Ok(id) => {
                    if !session.opts.quiet {
                        eprintln!("        {:<16} {:<14} submitted as job {id}", node.name, node.builtin);
                    }
                    jobs.push(Job { id, node: i, submitted: Instant::now() });
                }
                Err(why) => {
                    let diag = Diag::new(Code::R1007, format!("stage `{}` could not be submitted: {why}", node.name))
                        .hint(
                            "check that Slurm's commands work here (`sinfo`), or give their folder with `--slurm-bin`",
                        );
                    session.announce(ended, total, node, "failed (not submitted)");
                    ended += 1;
                    broken[i] = Some(node.name.clone());
                    outcomes[i] = Some(Outcome::Failed { diag, secs: 0.0 });
                }
            }
        }
        self.follow(session, &out, jobs, &mut outcomes, &mut broken, (ended, total));
        outcomes
    }
}

impl Slurm {
    /// Waits for the jobs, recording each one's outcome as it leaves the queue.
    fn follow(
        &self,
        session: &Session,
        out: &Path,
        mut jobs: Vec<Job>,
        outcomes: &mut [Option<Outcome>],
        broken: &mut [Option<String>],
        (mut ended, total): (usize, usize),
    ) {
        let nodes = session.nodes();
        let mut queue_errors = 0;
        while !jobs.is_empty() {
            if INTERRUPTED.load(Ordering::SeqCst) {
                self.cancel(&jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>());
                for j in jobs.drain(..) {
                    let node = &nodes[j.node];
                    session.announce(ended, total, node, &format!("cancelled (job {})", j.id));
                    ended += 1;
                    let diag = Diag::new(
                        Code::R1007,
                        format!("job {} of `{}` was cancelled: the run was interrupted", j.id, node.name),
                    )
                    .hint("run the pipeline again: what finished is cached");
                    outcomes[j.node] = Some(Outcome::Failed { diag, secs: j.submitted.elapsed().as_secs_f64() });
                }
                return;
            }
            let queue = match self.queue() {
                Ok(q) => {
                    queue_errors = 0;
                    q
                }
                Err(why) => {
                    queue_errors += 1;
                    if queue_errors < 10 {
                        std::thread::sleep(self.poll);
                        continue;
                    }
                    // The scheduler cannot be read: what the run folder holds is all we know.
                    self.cancel(&jobs.iter().map(|j| j.id.as_str()).collect::<Vec<_>>());
                    for j in jobs.drain(..) {
                        let diag = Diag::new(
                            Code::R1007,
                            format!("lost track of job {} of `{}`: {why}", j.id, nodes[j.node].name),
                        );
                        outcomes[j.node] = Some(Outcome::Failed { diag, secs: j.submitted.elapsed().as_secs_f64() });
                    }
                    return;
                }
            };
            // Jobs that left the queue, in plan order so that a failure is seen before its
            // dependants.
            let mut left: Vec<Job> = Vec::new();
            jobs.retain(|j| {
                let gone = !queue.contains_key(&j.id);
                if gone {
                    left.push(Job { id: j.id.clone(), node: j.node, submitted: j.submitted });
                }
                !gone
            });
            for j in left {
                if outcomes[j.node].is_some() {
                    continue;
                }
                let node = &nodes[j.node];
                let secs = j.submitted.elapsed().as_secs_f64();
                match session.from_cache(j.node) {
                    Some(mut done) => {
                        done.status = "executed";
                        session.announce(ended, total, node, &format!("executed (job {}, {secs:.1}s)", j.id));
                        outcomes[j.node] = Some(Outcome::Done { done: Box::new(done), secs });
                    }
                    None => {
                        let log = job::log_file(out, &node.name);
                        let mut diag = match std::fs::read_to_string(job::failure_file(out, &node.name))
                            .ok()
                            .and_then(|t| crate::yaml::from_str::<Failure>(&t).ok())
                        {
                            Some(f) => f.to_diag(),
                            None => Diag::new(
                                Code::R1007,
                                format!(
                                    "job {} of `{}` ended {} without a result",
                                    j.id,
                                    node.name,
                                    self.final_state(&j.id)
                                ),
                            )
                            .hint(
                                "a time limit or memory too small for the stage ends a job so: raise its `resources`",
                            ),
                        };
                        let tail = tail(&log);
                        if !tail.is_empty() {
                            diag = diag.hint(format!("the end of the job's log ({}):\n{tail}", log.display()));
                        }
                        session.announce(ended, total, node, &format!("failed (job {})", j.id));
                        outcomes[j.node] = Some(Outcome::Failed { diag, secs });
                        broken[j.node] = Some(node.name.clone());
                        ended += 1;
                        // Its dependants will never run: cancel them.
                        ended += self.cancel_dependants(session, &mut jobs, outcomes, broken, (ended, total));
                        continue;
                    }
                }
                ended += 1;
            }
            if !jobs.is_empty() {
                std::thread::sleep(self.poll);
            }
        }
    }

    /// Cancels the jobs that need a failed stage (directly or not); how many there were.
    fn cancel_dependants(
        &self,
        session: &Session,
        jobs: &mut Vec<Job>,
        outcomes: &mut [Option<Outcome>],
        broken: &mut [Option<String>],
        (ended, total): (usize, usize),
    ) -> usize {
        let nodes = session.nodes();
        let mut count = 0;
        // Plan order: a job's inputs come before it, so one pass marks every descendant.
        jobs.sort_by_key(|j| session.plan.order.iter().position(|&i| i == j.node));
        let mut cancelled = Vec::new();
        jobs.retain(|j| {
            let node = &nodes[j.node];
            let Some(&d) = node.deps.iter().find(|&&d| broken[d].is_some()) else { return true };
            let why = broken[d].clone().unwrap_or_default();
            let note = format!("{} (job {} cancelled)", skip_note(&nodes[d].name, &why), j.id);
            session.announce(ended + count, total, node, &format!("skipped ({note})"));
            broken[j.node] = Some(why);
            outcomes[j.node] = Some(Outcome::Skipped { note });
            cancelled.push(j.id.clone());
            count += 1;
            false
        });
        self.cancel(&cancelled.iter().map(String::as_str).collect::<Vec<_>>());
        count
    }
}
