//! `--jobs N`: independent stages at the same time on this machine. N workers take ready
//! stages (those whose inputs are done) in plan order; each runs its stage on a thread pool
//! of its own with the machine's threads shared out (N x threads <= cores). A stage's result
//! depends only on its inputs, arguments and random stream, and flowline's kernels give the
//! same bits on any number of threads, so the results are those of `--jobs 1`.

use super::executor::{Executor, Outcome, skip_note};
use super::session::{Results, Session};
use crate::lang::ArtifactRef;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

pub struct Parallel {
    pub jobs: usize,
    /// Threads each job computes with.
    pub threads: usize,
}

impl Parallel {
    /// `jobs` at a time within the `cores` this process may use: at most one job per core,
    /// the cores shared out evenly.
    pub fn within(jobs: usize, cores: usize) -> Parallel {
        let cores = cores.max(1);
        let jobs = jobs.clamp(1, cores);
        Parallel { jobs, threads: (cores / jobs).max(1) }
    }
}

/// What the workers share: each node's state and result, and how many have ended.
struct Board {
    state: Vec<State>,
    artifacts: Vec<Option<ArtifactRef>>,
    /// Why a node has no result: its own failure, or that of a stage it needs.
    broken: Vec<Option<String>>,
    outcomes: Vec<Option<Outcome>>,
    ended: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum State {
    /// Not part of this run.
    Out,
    Waiting,
    Running,
    Ended,
}

impl Executor for Parallel {
    fn execute(&self, session: &Session, selection: &[usize]) -> Vec<Option<Outcome>> {
        let nodes = session.nodes();
        let mut state = vec![State::Out; nodes.len()];
        for &i in selection {
            state[i] = State::Waiting;
        }
        let board = Mutex::new(Board {
            state,
            artifacts: vec![None; nodes.len()],
            broken: vec![None; nodes.len()],
            outcomes: (0..nodes.len()).map(|_| None).collect(),
            ended: 0,
        });
        let changed = Condvar::new();
        let total = selection.len();
        std::thread::scope(|scope| {
            for _ in 0..self.jobs {
                scope.spawn(|| self.worker(session, selection, &board, &changed, total));
            }
        });
        board.into_inner().map(|b| b.outcomes).unwrap_or_default()
    }
}

impl Parallel {
    fn worker(&self, session: &Session, selection: &[usize], board: &Mutex<Board>, changed: &Condvar, total: usize) {
        let nodes = session.nodes();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(self.threads).build();
        let Ok(mut b) = board.lock() else { return };
        loop {
            if b.ended == total {
                changed.notify_all();
                return;
            }
            // The first stage in plan order whose inputs have all ended.
            let ready = selection.iter().copied().find(|&i| {
                b.state[i] == State::Waiting
                    && nodes[i].deps.iter().all(|&d| matches!(b.state[d], State::Ended | State::Out))
            });
            let Some(i) = ready else {
                b = match changed.wait(b) {
                    Ok(b) => b,
                    Err(_) => return,
                };
                continue;
            };
            let node = &nodes[i];
            if let Some(&d) = node.deps.iter().find(|&&d| b.broken[d].is_some()) {
                let why = b.broken[d].clone().unwrap_or_default();
                let note = skip_note(&nodes[d].name, &why);
                session.announce(b.ended, total, node, &format!("skipped ({note})"));
                b.broken[i] = Some(why);
                b.outcomes[i] = Some(Outcome::Skipped { note });
                b.state[i] = State::Ended;
                b.ended += 1;
                changed.notify_all();
                continue;
            }
            b.state[i] = State::Running;
            // The inputs, shared (not copied) with the run.
            let mut inputs: Vec<Option<ArtifactRef>> = vec![None; nodes.len()];
            for &d in &node.deps {
                inputs[d] = b.artifacts[d].clone();
            }
            drop(b);
            let started = Instant::now();
            let upstream = Results { nodes, artifacts: &inputs };
            let result = match &pool {
                Ok(pool) => pool.install(|| session.run_stage(i, &upstream)),
                Err(_) => session.run_stage(i, &upstream),
            };
            let secs = started.elapsed().as_secs_f64();
            b = match board.lock() {
                Ok(b) => b,
                Err(_) => return,
            };
            let k = b.ended;
            b.outcomes[i] = Some(match result {
                Ok(done) => {
                    session.announce(k, total, node, &format!("{} ({secs:.2}s)", done.status));
                    b.artifacts[i] = Some(done.artifact.clone());
                    Outcome::Done { done: Box::new(done), secs }
                }
                Err(diag) => {
                    session.announce(k, total, node, &format!("failed ({secs:.2}s)"));
                    b.broken[i] = Some(node.name.clone());
                    Outcome::Failed { diag, secs }
                }
            });
            b.state[i] = State::Ended;
            b.ended += 1;
            changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_share_out_the_cores() {
        let p = Parallel::within(2, 2);
        assert_eq!((p.jobs, p.threads), (2, 1));
        let p = Parallel::within(2, 8);
        assert_eq!((p.jobs, p.threads), (2, 4));
        let p = Parallel::within(3, 8);
        assert_eq!((p.jobs, p.threads), (3, 2));
        let p = Parallel::within(16, 4);
        assert_eq!((p.jobs, p.threads), (4, 1), "no more jobs than cores");
        let p = Parallel::within(0, 0);
        assert_eq!((p.jobs, p.threads), (1, 1));
    }
}
