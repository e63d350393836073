//! `flow_plot`: the velocity of 2-D flows as arrows at several fractions of the way from the
//! data (0) to the base (1), over the density at that time where the flow has it in closed
//! form (a potential flow's rho_t, proportional to exp((phi_t + psi_t) / eps)).

use super::flow_trained::FlowTrained;
use crate::diag::{Code, Diag};
use crate::flow::{BuiltFlow, Square};
use crate::lang::{Args, FIGURE, Kind, Metrics, Output, RunCtx, Stage, StaticCall};
use crate::plots::{ArrowPanel, ArrowPanels};
use candle_core::{DType, Tensor};
use std::sync::Arc;

pub struct FlowPlot;

/// Cells per side of the background density.
const BACKGROUND: usize = 80;

impl Stage for FlowPlot {
    fn output(&self) -> &'static Kind {
        &FIGURE
    }
    fn metrics(&self, _args: &Args) -> Vec<String> {
        vec![]
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let mut d = Vec::new();
        let at = |p: &str| cx.args.get(p).map_or(cx.span, |v| v.span);
        d.extend(super::flow_density::check_bounds(cx));
        if let Some(t) = cx.args.floats("times")
            && (t.is_empty() || t.iter().any(|t| !(0.0..=1.0).contains(t)))
        {
            d.push(
                Diag::new(Code::E2006, format!("`times` are fractions of the flow in [0, 1], got {t:?}"))
                    .at(at("times"), "not in [0, 1]")
                    .hint("0 is the data, 1 the base distribution: `times: [0, 0.33, 0.67, 1]`"),
            );
        }
        d
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let flows: Vec<(String, Arc<FlowTrained>)> = cx.inputs::<FlowTrained>("flows")?;
        for (name, f) in &flows {
            if f.shape != [2] {
                return Err(cx
                    .error(
                        Code::R1002,
                        format!("`flow_plot` draws 2-D flows; `{name}` models examples of shape {:?}", f.shape),
                    )
                    .hint("draw the velocity of flows over `toy2d(...)` data"));
            }
            if f.flow
                .velocity(
                    0.0,
                    &Tensor::zeros((1, 2), DType::F32, &cx.device).map_err(|e| cx.compute_error("a point", e))?,
                )
                .is_none()
            {
                return Err(cx
                    .error(
                        Code::R1002,
                        format!("`{name}` is a chain of several CNF blocks: its velocity is not one field"),
                    )
                    .hint("draw flows of one block (`blocks: 1`) or potential flows"));
            }
        }
        let a = cx.args();
        let labels = a.texts("labels");
        let times = a.floats("times").unwrap_or_else(|| vec![0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0]);
        let side = a.int("grid").unwrap_or(17) as usize;
        let bounds = a.floats("bounds");
        let mut panels = Vec::new();
        for (k, (name, f)) in flows.iter().enumerate() {
            let label = labels.get(k).cloned().unwrap_or_else(|| name.clone());
            let square = super::flow_density::square_of(bounds.as_deref(), &f.data, side);
            let fail = |what: &str, e: candle_core::Error| cx.error(Code::R1006, format!("{what} of `{name}`: {e}"));
            let centres = square.centres();
            let x = Tensor::from_vec(centres.clone(), (side * side, 2), &cx.device).map_err(|e| fail("the grid", e))?;
            let fine = Square { side: BACKGROUND, ..square };
            let fine_x = Tensor::from_vec(fine.centres(), (BACKGROUND * BACKGROUND, 2), &cx.device)
                .map_err(|e| fail("the grid", e))?;
            for &t in &times {
                let v = match f.flow.velocity(t, &x) {
                    Some(v) => v.map_err(|e| fail("the velocity", e))?,
                    None => return Err(cx.error(Code::R1002, format!("`{name}` has no single velocity field"))),
                };
                let v: Vec<f64> = v
                    .to_dtype(DType::F64)
                    .and_then(|v| v.flatten_all()?.to_vec1())
                    .map_err(|e| fail("the velocity", e))?;
                let arrows = centres
                    .chunks_exact(2)
                    .zip(v.chunks_exact(2))
                    .map(|(p, v)| [p[0] as f64, p[1] as f64, v[0], v[1]])
                    .collect();
                let background = match &f.flow {
                    BuiltFlow::Potential(p) => {
                        let log_rho = p.log_density_at(t, &fine_x).map_err(|e| fail("the density", e))?;
                        let values: Vec<f64> = log_rho
                            .to_dtype(DType::F64)
                            .and_then(|l| l.to_vec1())
                            .map_err(|e| fail("the density", e))?;
                        let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                        Some((values.iter().map(|l| (l - max).exp()).collect(), BACKGROUND))
                    }
                    _ => None,
                };
                panels.push(ArrowPanel {
                    heading: format!("{label}: t = {}", fraction(t)),
                    arrows,
                    background,
                    lo: square.lo,
                    hi: square.hi,
                    spacing: square.cell(),
                });
            }
        }
        let drawn_over = flows.iter().any(|(_, f)| matches!(f.flow, BuiltFlow::Potential(_)));
        let title = super::plots::title(cx, || {
            let over = if drawn_over { " over the density at that time" } else { "" };
            format!("Velocity from the data (t = 0) to the normal (t = 1){over}")
        });
        let figure = ArrowPanels { title: &title, panels: &panels, columns: times.len() }.render();
        let files = super::plots::write_figure(cx, "field", figure)?;
        Ok(Output::nothing(&FIGURE, Metrics::new(), files))
    }
}

/// 1/3 and 2/3 as fractions, other times as decimals.
fn fraction(t: f64) -> String {
    for (v, s) in [(1.0 / 3.0, "1/3"), (2.0 / 3.0, "2/3")] {
        if (t - v).abs() < 1e-3 {
            return s.to_string();
        }
    }
    format!("{t}")
}
