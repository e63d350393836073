//! Out-of-distribution detection by a score: the area under the ROC curve that separates
//! outliers from inliers, and per-set histograms of the score.

pub mod auroc;
pub mod histogram;

pub use auroc::auroc;
pub use histogram::{Bins, density_histogram};
