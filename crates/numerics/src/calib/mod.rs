//! Calibrated confidence for classifiers (Finlay & Oberman, "Empirical confidence estimates
//! for classification by deep neural networks"): uncertainty scores from the softmax, the
//! input gradient or MC dropout; equal-mass histograms of a score fitted on calibration
//! data; and how predictive they are on other data (expected Bayes ratio, ECE, Brier).

pub mod histogram;
pub mod measures;
pub mod scores;
