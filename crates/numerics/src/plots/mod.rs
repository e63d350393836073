//! Figures on plotters: anti-aliased text in an embedded font, legends, log and
//! whole-number axes, a colour-blind-safe palette; each figure rendered as PNG at print
//! resolution and SVG beside it.

mod arrows;
mod axis;
mod figure;
mod frame;
mod grid;
mod heatmap;
mod legend;
mod lines;
mod panels;
mod points;
mod style;
mod sweep;

pub use arrows::{ArrowPanel, ArrowPanels};
pub use axis::{Axis, Scaling};
pub use figure::{Figure, PNG_SCALE};
pub use grid::ImageGrid;
pub use heatmap::{Heatmap, Heatmaps, viridis};
pub use lines::{LinePlot, Series};
pub use points::{Move, Points};
pub use sweep::{SweepLine, SweepPanel, SweepPlot};
