//! `density_plot`: for each 2-D flow, a histogram of its training data, its density on a
//! grid (exact trace; a potential flow's in closed form) and a histogram of samples
//! integrated back from the base; each density's mass on the grid is reported (about 1 when
//! the grid holds the distribution), and the function evaluations of a sampling solve.

use super::flow_trained::FlowTrained;
use crate::diag::{Code, Diag};
use crate::flow::{BuiltFlow, Square};
use crate::lang::{Args, FIGURE, Kind, Metrics, Output, RunCtx, Stage, StaticCall};
use crate::plots::{Heatmap, Heatmaps};
use candle_core::{DType, Tensor};
use std::sync::Arc;

pub struct DensityPlot;

/// Points per solve on the grid and for the samples.
const BATCH: usize = 10_000;

impl Stage for DensityPlot {
    fn output(&self) -> &'static Kind {
        &FIGURE
    }
    fn metrics(&self, args: &Args) -> Vec<String> {
        if args.stage("flows").is_some() { vec!["mass".into(), "sample_nfe".into()] } else { vec![] }
    }
    /// 1: potential flows' densities in closed form; the sampling's NFE reported. 2: a
    /// potential flow's Gauss-Hermite rule rebuilt finer than its training's.
    fn revision(&self) -> u32 {
        2
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        check_bounds(cx).into_iter().collect()
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let flows: Vec<(String, Arc<FlowTrained>)> = cx.inputs::<FlowTrained>("flows")?;
        if let Some((name, f)) = flows.iter().find(|(_, f)| f.shape != [2]) {
            return Err(cx
                .error(
                    Code::R1002,
                    format!("`density_plot` draws 2-D flows; `{name}` models examples of shape {:?}", f.shape),
                )
                .hint("evaluate higher-dimensional flows with `evaluate(..., metrics: [nll, nfe])`"));
        }
        let a = cx.args();
        let labels = a.texts("labels");
        let side = a.int("grid").unwrap_or(200) as usize;
        let count = a.int("samples").unwrap_or(20_000) as usize;
        let bounds = a.floats("bounds");
        let mut rng = cx.take_rng();
        let mut panels = Vec::new();
        let mut metrics = Metrics::new();
        let mut squares = Vec::new();
        let single = flows.len() == 1 && cx.args().stage("flows").is_some();
        for (k, (name, f)) in flows.iter().enumerate() {
            let label = labels.get(k).cloned().unwrap_or_else(|| name.clone());
            let square = square_of(bounds.as_deref(), &f.data, side);
            let flow = &f.flow;
            // A potential flow's density in closed form: its ODE at every grid point would
            // smooth both potentials over all its draws at every step.
            let log_z = match flow {
                BuiltFlow::Potential(p) => Some(super::potential_train::normaliser(cx, p, &mut rng)?),
                _ => None,
            };
            let fail = |what: &str, e: String| cx.error(Code::R1006, format!("{what} of `{name}`: {e}"));
            let centres = square.centres();
            let mut density = Vec::with_capacity(side * side);
            for chunk in centres.chunks(2 * BATCH) {
                let x = Tensor::from_vec(chunk.to_vec(), (chunk.len() / 2, 2), &cx.device)
                    .map_err(|e| fail("the grid", e.to_string()))?;
                let log_p = match (flow, log_z) {
                    (BuiltFlow::Potential(p), Some(log_z)) => {
                        p.closed_form_log_density(&x, log_z).map_err(|e| fail("the density", e.to_string()))?
                    }
                    _ => {
                        flow.exact_log_density(&x, &f.spec.solver)
                            .map_err(|e| fail("the density", e.failure.to_string()))?
                            .0
                    }
                };
                let p = log_p.exp().and_then(|t| t.to_dtype(DType::F64)?.to_vec1::<f64>());
                density.extend(p.map_err(|e| fail("the density", e.to_string()))?);
            }
            let cell = square.cell();
            let mass: f64 = density.iter().sum::<f64>() * cell * cell;
            if single {
                metrics.insert("mass".into(), mass);
            } else {
                metrics.insert(format!("{label}.mass"), mass);
            }
            let mut samples = Vec::with_capacity(2 * count);
            let (mut nfe, mut solves) = (0usize, 0usize);
            let mut left = count;
            while left > 0 {
                let m = left.min(BATCH);
                let z: Vec<f32> = (0..2 * m).map(|_| rng.normal() as f32).collect();
                let z = Tensor::from_vec(z, (m, 2), &cx.device).map_err(|e| fail("the base draws", e.to_string()))?;
                let (x, stats) =
                    flow.decode(&z, &f.spec.solver).map_err(|e| fail("sampling", e.failure.to_string()))?;
                nfe += stats.nfe;
                solves += 1;
                let v = x.to_dtype(DType::F32).and_then(|t| t.flatten_all()?.to_vec1::<f32>());
                samples.extend(v.map_err(|e| fail("sampling", e.to_string()))?);
                left -= m;
            }
            let sample_nfe = nfe as f64 / solves.max(1) as f64;
            if single {
                metrics.insert("sample_nfe".into(), sample_nfe);
            } else {
                metrics.insert(format!("{label}.sample_nfe"), sample_nfe);
            }
            // Histograms on bins that hold a couple of points each: sqrt(n / 2) a side.
            let bins = |n: usize| Square { side: ((n as f64 / 2.0).sqrt() as usize).max(10).min(side), ..square };
            let (data_bins, sample_bins) = (bins(f.data.len() / 2), bins(count));
            let rows = f.data.len() / 2;
            panels.push(Heatmap {
                heading: format!("{label}: data ({rows})"),
                values: data_bins.histogram(&f.data),
                side: data_bins.side,
            });
            let how = if log_z.is_some() { " (closed form)" } else { "" };
            panels.push(Heatmap { heading: format!("{label}: density{how}"), values: density, side });
            panels.push(Heatmap {
                heading: format!("{label}: samples ({count})"),
                values: sample_bins.histogram(&samples),
                side: sample_bins.side,
            });
            squares.push(square);
        }
        let title = super::plots::title(cx, || match squares.as_slice() {
            [s] => format!("Data, learned density and samples on [{:.1}, {:.1}]²", s.lo, s.hi),
            _ => "Data, learned density and samples".to_string(),
        });
        let figure = Heatmaps { title: &title, panels: &panels, columns: 3 }.render();
        let files = super::plots::write_figure(cx, "density", figure)?;
        Ok(Output::nothing(&FIGURE, metrics, files))
    }
}

/// `bounds: [lo, hi]` of a 2-D figure, if given, must have lo < hi.
pub(super) fn check_bounds(cx: &StaticCall) -> Option<Diag> {
    let b = cx.args.floats("bounds")?;
    (b.len() != 2 || b[1] <= b[0]).then(|| {
        Diag::new(Code::E2006, format!("`bounds` is [lo, hi] with lo < hi, got {b:?}"))
            .at(cx.args.get("bounds").map_or(cx.span, |v| v.span), "not [lo, hi]")
            .hint("for example `bounds: [-4, 4]`")
    })
}

/// The square a 2-D figure draws: `bounds` when given, else around the training points.
pub(super) fn square_of(bounds: Option<&[f64]>, data: &[f32], side: usize) -> Square {
    match bounds {
        Some(b) => Square { lo: b[0], hi: b[1], side },
        None => Square::around(data, side),
    }
}
