//! Normalizing flows from entropic Kantorovich potentials (Finlay, Gerolin, Oberman,
//! Pooladian 2020): two scalar potentials trained by a dual objective with no ODE solve
//! (`dual`), the heat operator through which they are smoothed (`heat`), and the flow
//! recovered from them afterwards (`flow`): its velocity, likelihood by the ODE and in
//! closed form, and sampling.

mod dual;
mod flow;
mod heat;
mod net;

pub use dual::{DualFit, DualRecord, Scheme, fit_dual};
pub use flow::{PotentialFlow, Velocity};
pub use heat::{HeatRule, Smoothed, gauss_hermite_1d};
pub use net::{Derivatives, Potential, Want, check_layers};

#[cfg(test)]
mod tests;
