//! A chart's frame: title, axes with their labelled ticks, and the grid.

use super::axis::{Axis, Ticked};
use super::figure::err;
use super::style::{GRID, Scale, TEXT};
use plotters::coord::Shift;
use plotters::prelude::*;

pub type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<Ticked, Ticked>>;

/// A chart titled `title` over the plotted ranges `xr` x `yr` of the axes, its frame drawn.
pub fn chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    (x, xr): (&Axis, (f64, f64)),
    (y, yr): (&Axis, (f64, f64)),
    s: Scale,
) -> Result<Chart<'a, DB>, String>
where
    DB::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(root)
        .caption(title, s.text(16.0))
        .margin(s.px(14.0))
        .x_label_area_size(s.px(46.0))
        .y_label_area_size(s.px(62.0))
        .build_cartesian_2d(x.coord(xr), y.coord(yr))
        .map_err(err)?;
    let (xf, yf) = (|v: &f64| x.label(*v), |v: &f64| y.label(*v));
    chart
        .configure_mesh()
        .x_desc(x.label.as_str())
        .y_desc(y.label.as_str())
        .x_label_formatter(&xf)
        .y_label_formatter(&yf)
        .label_style(s.text(12.0))
        .axis_desc_style(s.text(13.0))
        .bold_line_style(GRID.stroke_width(s.stroke(1.0)))
        .light_line_style(TRANSPARENT)
        .axis_style(TEXT.stroke_width(s.stroke(1.0)))
        .draw()
        .map_err(err)?;
    Ok(chart)
}
