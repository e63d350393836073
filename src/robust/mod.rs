//! Adversarial robustness: the numerical pieces of attacks (so far the LogBarrier attack in l2 and the
//! proximal operators of ProxLogBarrier). Knows nothing of the language.

pub mod logbarrier;
pub mod margin;
pub mod pgd;
pub mod prox;
pub mod proxlogbarrier;
