//! Adversarial robustness: the numerical pieces of attacks (so far the proximal operators
//! of ProxLogBarrier). Knows nothing of the language.

pub mod prox;
