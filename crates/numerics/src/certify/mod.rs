//! Certified robustness from Gaussian noise: randomized smoothing's Monte-Carlo certificate
//! (Cohen et al. 2019), and the one-evaluation certificate of a deterministic Gaussian
//! average (Campbell, Finlay & Oberman), with the statistics both rest on.

pub mod average;
pub mod noise;
pub mod smoothing;
pub mod stats;

#[cfg(test)]
mod tests;
