//! One attack, whichever it is: the configurations the language builds, and the common
//! last step every attack gets so that users compare like with like.

use super::cw::{CwConfig, carlini_wagner};
use super::ddn::{DdnConfig, ddn};
use super::logbarrier::{LogBarrierConfig, log_barrier};
use super::norms::Norm;
use super::oracle::Oracle;
use super::pgd::{PgdConfig, pgd_min_distance};
use super::proxlogbarrier::{ProxConfig, prox_log_barrier};
use super::start::pull_toward_inputs;
use crate::rng::Rng;
use candle_core::Result;

#[derive(Debug, Clone, Copy)]
pub enum Attack {
    LogBarrier(LogBarrierConfig),
    ProxLogBarrier(ProxConfig),
    Pgd(PgdConfig),
    CarliniWagner(CwConfig),
    Ddn(DdnConfig),
}

/// Halvings of the segment back toward the input in the final pull.
const PULL_BISECTIONS: usize = 20;

impl Attack {
    /// The norm the attack minimises.
    pub fn norm(&self) -> Norm {
        match self {
            Attack::LogBarrier(c) => c.norm,
            Attack::ProxLogBarrier(c) => c.norm,
            Attack::Pgd(c) => c.norm,
            Attack::CarliniWagner(_) | Attack::Ddn(_) => Norm::L2,
        }
    }

    /// Adversarial points for every input (`None` where the attack failed). Every found
    /// point is finally pulled toward its input along the segment between them while it
    /// stays adversarial, which shrinks every norm of the perturbation alike.
    pub fn run(
        &self,
        oracle: &Oracle,
        xs: &[Vec<f64>],
        labels: &[usize],
        rng: &mut Rng,
    ) -> Result<Vec<Option<Vec<f64>>>> {
        let found = match self {
            Attack::LogBarrier(c) => log_barrier(oracle, xs, labels, c, rng)?,
            Attack::ProxLogBarrier(c) => prox_log_barrier(oracle, xs, labels, c, rng)?,
            Attack::Pgd(c) => pgd_min_distance(oracle, xs, labels, c, rng)?,
            Attack::CarliniWagner(c) => carlini_wagner(oracle, xs, labels, c)?,
            Attack::Ddn(c) => ddn(oracle, xs, labels, c)?,
        };
        pull_toward_inputs(oracle, xs, labels, &found, PULL_BISECTIONS)
    }
}
