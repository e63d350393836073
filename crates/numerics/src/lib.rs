//! flowline's numerical library: layer specs, models, losses, optimizers and the training
//! loop (`nn`), ODE solvers and the adjoint method (`ode`), continuous normalizing flows
//! (`flow`), flows from entropic Kantorovich potentials (`potential`), minimum-norm attacks over a
//! batched model oracle (`robust`), datasets and their file formats (`data`), figures
//! (`plots`), CSV cells (`csv`), atomic file writes (`io`), the project's seeded RNG (`rng`)
//! and the CPU thread count (`threads`).
//!
//! It knows nothing of the pipeline language: it is its own crate so that the compiler
//! enforces that boundary. The `flowline` crate re-exports its modules.

pub mod calib;
pub mod certify;
pub mod csv;
pub mod data;
pub mod flow;
pub mod io;
pub mod nn;
pub mod ode;
pub mod ood;
pub mod plots;
pub mod potential;
pub mod rng;
pub mod robust;
pub mod threads;

#[cfg(test)]
pub(crate) mod linalg_reference;
