//! Figures as PNG: a small raster canvas with axes, ticks and text (8x8 bitmap font),
//! and the plots built on it. No system fonts or graphics libraries are needed.

mod canvas;
mod figures;
mod grid;

pub use canvas::Canvas;
pub use figures::{Move, Series, decision_plot, line_plot, scatter_plot};
pub use grid::{image_grid, image_grid_columns};
