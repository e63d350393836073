//! Several attacks on the same inputs, keeping per input the smallest perturbation (in the
//! ensemble's norm) that the model, asked again, confirms as adversarial. What each member
//! did (images broken, images won, model calls, seconds) is logged for the report.
//!
//! A member warm-started from an attack that ran earlier in the ensemble reuses that
//! attack's points instead of running it again: `[fmn(l1), prox_logbarrier(l1) from
//! fmn(l1)]` runs FMN once. Its logged calls are then its own refinement only.

use super::attack::{Attack, Points};
use super::norms::{Norm, distance};
use super::oracle::Oracle;
use super::start::adversarial;
use crate::rng::Rng;
use candle_core::Result;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    pub norm: Norm,
    pub members: Vec<Attack>,
}

/// What one member did, summed over the batches it ran on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberRun {
    pub label: String,
    /// Inputs it found a verified adversarial point for.
    pub broken: usize,
    /// Inputs where its point was the smallest (ties go to the earlier member).
    pub wins: usize,
    /// Model calls per input summed over inputs: forward only, forward and backward.
    pub forwards: usize,
    pub gradients: usize,
    pub seconds: f64,
}

impl Ensemble {
    /// Labels of the members, numbered where two would read the same.
    pub fn labels(&self) -> Vec<String> {
        let plain: Vec<String> = self.members.iter().map(Attack::label).collect();
        plain
            .iter()
            .enumerate()
            .map(|(k, l)| {
                let before = plain[..k].iter().filter(|p| *p == l).count();
                if before == 0 && plain[k + 1..].iter().all(|p| p != l) {
                    l.clone()
                } else {
                    format!("{l} #{}", before + 1)
                }
            })
            .collect()
    }

    pub fn run(
        &self,
        oracle: &Oracle,
        xs: &[Vec<f64>],
        labels: &[usize],
        rng: &mut Rng,
        log: &mut Vec<MemberRun>,
    ) -> Result<Points> {
        let names = self.labels();
        if log.len() < self.members.len() {
            log.resize_with(self.members.len(), MemberRun::default);
        }
        let mut best: Vec<(f64, Option<usize>, Option<Vec<f64>>)> = vec![(f64::INFINITY, None, None); xs.len()];
        let mut done: Vec<Points> = Vec::new();
        for (m, member) in self.members.iter().enumerate() {
            let (f0, g0) = oracle.evaluations();
            let clock = Instant::now();
            let found = match member {
                Attack::Warm { start, refine } => match self.members[..m].iter().position(|a| a == start.as_ref()) {
                    Some(earlier) => refine.run_from(oracle, xs, labels, &done[earlier], rng)?,
                    None => member.run(oracle, xs, labels, rng)?,
                },
                other => other.run(oracle, xs, labels, rng)?,
            };
            let verified = verify(oracle, xs, labels, &found)?;
            let (f1, g1) = oracle.evaluations();
            let entry = &mut log[m];
            entry.label = names[m].clone();
            entry.forwards += f1 - f0;
            entry.gradients += g1 - g0;
            entry.seconds += clock.elapsed().as_secs_f64();
            for (i, p) in verified.iter().enumerate() {
                let Some(p) = p else { continue };
                entry.broken += 1;
                let d = distance(self.norm, p, &xs[i]);
                if d < best[i].0 {
                    best[i] = (d, Some(m), Some(p.clone()));
                }
            }
            done.push(verified);
        }
        for b in &best {
            if let Some(m) = b.1 {
                log[m].wins += 1;
            }
        }
        Ok(best.into_iter().map(|b| b.2).collect())
    }
}

/// The points the model, asked again, calls adversarial; the others dropped.
fn verify(oracle: &Oracle, xs: &[Vec<f64>], labels: &[usize], found: &Points) -> Result<Points> {
    let have: Vec<usize> = (0..xs.len()).filter(|&i| found[i].is_some()).collect();
    let rows: Vec<Vec<f64>> = have.iter().map(|&i| found[i].clone().unwrap_or_default()).collect();
    let ys: Vec<usize> = have.iter().map(|&i| labels[i]).collect();
    let (lo, hi) = oracle.bounds;
    let mut out = vec![None; xs.len()];
    for ((&i, ok), row) in have.iter().zip(adversarial(oracle, &rows, &ys)?).zip(rows) {
        if ok && row.iter().all(|v| *v >= lo && *v <= hi) {
            out[i] = Some(row);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::ddn::DdnConfig;
    use super::super::fmn::FmnConfig;
    use super::super::linear_problem::LinearProblem;
    use super::super::oracle::Criterion;
    use super::super::pgd::PgdConfig;
    use super::*;

    /// The ensemble returns, per input, exactly the smallest of its members' distances
    /// (each member run alone with the same generator state reproduces its points), the
    /// wins add up to the inputs broken, and a warm start from an earlier member does not
    /// run that member again.
    #[test]
    fn keeps_the_smallest_member_per_input_and_shares_warm_starts() {
        let mut rng = Rng::new(51);
        let p = LinearProblem::random(&mut rng, 8, 6, 1.0, 0.0);
        let model = |z: &candle_core::Tensor| p.model(z);
        let oracle = Oracle::new(&model, &[8], (-4.0, 4.0), Criterion { top: 1 }, &candle_core::Device::Cpu);
        // A crude PGD (few steps, few halvings) so that members differ per image.
        let pgd = Attack::Pgd(PgdConfig { steps: 5, bisections: 3, ..PgdConfig::baseline(Norm::L1, None) });
        let fmn = Attack::Fmn(FmnConfig { steps: 10, ..FmnConfig::paper(Norm::L1) });
        let warm =
            Attack::Warm { start: Box::new(fmn.clone()), refine: Box::new(Attack::Fmn(FmnConfig::paper(Norm::L1))) };
        let ddn = Attack::Ddn(DdnConfig { steps: 10, ..DdnConfig::default() });
        let members = vec![pgd, fmn, warm, ddn];
        let e = Ensemble { norm: Norm::L1, members: members.clone() };
        let mut log = Vec::new();
        let got = e.run(&oracle, &p.xs, &p.labels, &mut Rng::new(7), &mut log).unwrap();

        let mut alone_rng = Rng::new(7);
        let mut alone: Vec<Points> = Vec::new();
        for m in &members {
            alone.push(match m {
                Attack::Warm { refine, .. } => {
                    refine.run_from(&oracle, &p.xs, &p.labels, &alone[1], &mut alone_rng).unwrap()
                }
                m => m.run(&oracle, &p.xs, &p.labels, &mut alone_rng).unwrap(),
            });
        }
        for (i, g) in got.iter().enumerate() {
            let best = alone
                .iter()
                .filter_map(|a| a[i].as_ref().map(|a| distance(Norm::L1, a, &p.xs[i])))
                .fold(f64::INFINITY, f64::min);
            let d = distance(Norm::L1, g.as_ref().expect("broken"), &p.xs[i]);
            assert_eq!(d, best, "image {i}");
        }
        assert_eq!(log.iter().map(|m| m.wins).sum::<usize>(), p.xs.len());
        assert!(log.iter().filter(|m| m.wins > 0).count() >= 2, "members that win differ: {log:?}");
        // The warm member's calls are its refinement only: about FMN's 100 steps, 20
        // pull halvings and a verification per image, not 10 more steps of its start.
        assert_eq!(log[2].gradients, 100 * p.xs.len());
        assert_eq!(log[1].gradients, 10 * p.xs.len());
        assert_eq!(log[2].label, "fmn(l1) from fmn(l1)");
    }

    #[test]
    fn repeated_labels_are_numbered() {
        let f = Attack::Fmn(FmnConfig::paper(Norm::L2));
        let g = Attack::Fmn(FmnConfig { steps: 3, ..FmnConfig::paper(Norm::L2) });
        let e = Ensemble { norm: Norm::L2, members: vec![f, Attack::Ddn(DdnConfig::default()), g] };
        assert_eq!(e.labels(), vec!["fmn(l2) #1", "ddn", "fmn(l2) #2"]);
    }
}
