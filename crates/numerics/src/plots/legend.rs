//! The legend: its box, in the corner of the plot with the least data under it.

use super::figure::err;
use super::frame::Chart;
use super::style::{GRID, Scale};
use plotters::chart::SeriesLabelPosition;
use plotters::prelude::*;

/// Draws the legend of the labelled series at `corner`.
pub fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    corner: SeriesLabelPosition,
    s: Scale,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(corner)
        .margin(s.px(10.0))
        .label_font(s.text(12.0))
        .legend_area_size(s.px(34.0))
        .background_style(WHITE.mix(0.9))
        .border_style(GRID.stroke_width(s.stroke(1.0)))
        .draw()
        .map_err(err)
}

/// Of the four corners, the one whose box (a third of the width, a quarter of the height)
/// covers the fewest of `points` (in plot coordinates over `x` x `y`); the upper right on ties.
pub fn emptiest_corner(points: impl Iterator<Item = (f64, f64)>, x: (f64, f64), y: (f64, f64)) -> SeriesLabelPosition {
    let mut counts = [0usize; 4];
    for (px, py) in points {
        let u = (px - x.0) / (x.1 - x.0);
        let v = (py - y.0) / (y.1 - y.0);
        let (right, left, top, bottom) = (u > 0.66, u < 0.34, v > 0.75, v < 0.25);
        for (k, inside) in [right && top, left && top, right && bottom, left && bottom].into_iter().enumerate() {
            counts[k] += inside as usize;
        }
    }
    let best = (0..4).min_by_key(|&k| (counts[k], k)).unwrap_or(0);
    [
        SeriesLabelPosition::UpperRight,
        SeriesLabelPosition::UpperLeft,
        SeriesLabelPosition::LowerRight,
        SeriesLabelPosition::LowerLeft,
    ][best]
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rising_curve_leaves_the_upper_left_free() {
        let rising = (0..100).map(|i| (i as f64, (i as f64 / 100.0).sqrt()));
        let corner = emptiest_corner(rising, (0.0, 100.0), (0.0, 1.0));
        assert!(matches!(corner, SeriesLabelPosition::UpperLeft), "{corner:?}");
        let falling = (0..100).map(|i| (i as f64, 1.0 - (i as f64 / 100.0).sqrt()));
        assert!(matches!(emptiest_corner(falling, (0.0, 100.0), (0.0, 1.0)), SeriesLabelPosition::UpperRight));
    }
}
