//! Adversarial robustness: minimum-norm attacks on a batch of inputs through one model
//! oracle (LogBarrier, ProxLogBarrier, PGD with bisection, Carlini-Wagner l2, DDN, FMN;
//! warm starts and ensembles of them) and the
//! proximal operators they need. Knows nothing of the language.

pub mod attack;
pub mod bounds;
pub mod cw;
pub mod ddn;
pub mod ensemble;
pub mod fmn;
pub mod logbarrier;
pub mod norms;
pub mod oracle;
pub mod pgd;
pub mod prox;
pub mod proxlogbarrier;
pub mod start;

#[cfg(test)]
pub(crate) mod linear_problem;
