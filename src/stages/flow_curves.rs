//! `flow_curves`: per-iteration records of several flow trainings overlaid, the figure
//! RNODE compares plain and regularized training with (NFE per iteration), with each
//! run's mean over its last tenth reported.

use super::flow_train::{last_tenth, mean};
use super::flow_trained::FlowTrained;
use crate::diag::{Code, Diag};
use crate::lang::{FIGURE, Kind, Metrics, Output, RunCtx, Stage};
use crate::plots::{Axis, LinePlot, Scaling, Series};

pub const CURVES: [&str; 6] = ["nfe_forward", "nfe_backward", "nll", "bits_per_dim", "loss", "seconds"];

pub struct FlowCurves;

/// The axis label and the title's noun of a curve.
fn describe(metric: &str) -> (&'static str, &'static str) {
    match metric {
        "nfe_forward" => ("function evaluations (forward)", "Forward function evaluations"),
        "nfe_backward" => ("function evaluations (backward)", "Backward function evaluations"),
        "nll" => ("negative log-likelihood (batch)", "Negative log-likelihood"),
        "bits_per_dim" => ("bits per dimension (batch)", "Bits per dimension"),
        "loss" => ("loss (batch)", "Loss"),
        _ => ("seconds", "Seconds"),
    }
}

impl Stage for FlowCurves {
    fn output(&self) -> &'static Kind {
        &FIGURE
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let runs = cx.inputs::<FlowTrained>("runs")?;
        let a = cx.args();
        let metric = a.text("metric").unwrap_or("nfe_forward").to_string();
        let window = a.int("window").unwrap_or(50) as usize;
        let labels = a.texts("labels");
        let mut curves = Vec::new();
        let mut metrics = Metrics::new();
        for (k, (name, t)) in runs.iter().enumerate() {
            let label = labels.get(k).cloned().unwrap_or_else(|| name.clone());
            let v = t.records.curve(&metric, &t.shape).map_err(|e| {
                cx.error(Code::R1002, format!("`{name}`: {e}"))
                    .hint("draw `loss` or `seconds` for flows trained by a dual")
            })?;
            metrics.insert(format!("{label}.{metric}"), mean(last_tenth(&v).iter().copied()));
            curves.push((label, super::plots::moving_average(&v, window)));
        }
        let (axis, noun) = describe(&metric);
        let title = super::plots::title(cx, || format!("{noun} per iteration (moving average over {window})"));
        let plot = LinePlot {
            title: &title,
            x: Axis::new("iteration", Scaling::Integer),
            // Bits/dim fall from tens to about one: on a linear axis the end is flat.
            y: Axis::new(axis, if metric == "bits_per_dim" { Scaling::Log } else { Scaling::Linear }),
            series: curves.iter().map(|(l, v)| Series::steps(l, v)).collect(),
        };
        let files = super::plots::write_figure(cx, "curves", plot.render())?;
        Ok(Output::nothing(&FIGURE, metrics, files))
    }
}
