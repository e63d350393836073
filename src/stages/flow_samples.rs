//! `sample_grid`: images drawn from a trained image flow (base draws integrated back through
//! its blocks), as FFJORD and RNODE show their MNIST samples, with training images beside
//! them for comparison; reports the NFE of the sampling solves.

use super::flow_trained::FlowTrained;
use crate::diag::{Code, Diag};
use crate::lang::{Args, FIGURE, Kind, Metrics, Output, RunCtx, Stage};
use crate::plots::ImageGrid;
use candle_core::DType;

pub struct SampleGrid;

impl Stage for SampleGrid {
    fn output(&self) -> &'static Kind {
        &FIGURE
    }
    /// The evaluations of the sampling solves.
    fn metrics(&self, _args: &Args) -> Vec<String> {
        vec!["nfe".into()]
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let f = cx.input::<FlowTrained>("flow")?;
        if f.shape.len() != 3 {
            return Err(cx
                .error(Code::R1002, format!("`sample_grid` draws image flows; this flow models shape {:?}", f.shape))
                .hint("draw 2-D flows with `density_plot`"));
        }
        let a = cx.args();
        let count = a.int("count").unwrap_or(64) as usize;
        let with_data = a.bool("data").unwrap_or(true);
        let mut rng = cx.take_rng();
        let (x, stats) = f
            .chain
            .sample(count, &f.spec.solver, &mut rng, DType::F32, &cx.device)
            .map_err(|e| cx.error(Code::R1006, format!("sampling the flow: {}", e.failure)))?;
        let values = x
            .clamp(0f32, 1f32)
            .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
            .map_err(|e| cx.compute_error("the samples", e))?;
        let dim = f.dim();
        let shown = if with_data { (f.data.len() / dim).min(count) } else { 0 };
        let side = (count as f64).sqrt().ceil() as usize;
        // Samples in a block on the left, as many training images in one on the right;
        // missing cells are white (unseen on the page).
        let blank = vec![1f32; dim];
        let samples: Vec<&[f32]> = values.chunks(dim).collect();
        let data: Vec<&[f32]> = f.data.chunks(dim).take(shown).collect();
        let mut images: Vec<&[f32]> = Vec::new();
        for row in 0..count.div_ceil(side) {
            for j in 0..side {
                images.push(samples.get(row * side + j).copied().unwrap_or(blank.as_slice()));
            }
            if shown > 0 {
                for j in 0..side {
                    images.push(data.get(row * side + j).copied().unwrap_or(blank.as_slice()));
                }
            }
        }
        let mut headings = vec![""; if shown > 0 { 2 * side } else { 0 }];
        if shown > 0 {
            (headings[0], headings[side]) = ("samples", "training images");
        }
        let captions = vec![String::new(); images.len()];
        let title = super::plots::title(cx, || match shown {
            0 => format!("{count} samples"),
            _ => format!("{count} samples and {shown} training images"),
        });
        let grid = ImageGrid {
            title: &title,
            images: &images,
            shape: &f.shape,
            captions: &captions,
            columns: Some(if shown > 0 { 2 * side } else { side }),
            headings: &headings,
        };
        let files = super::plots::write_figure(cx, "samples", grid.render())?;
        Ok(Output::nothing(&FIGURE, metrics(stats.nfe), files))
    }
}

fn metrics(nfe: usize) -> Metrics {
    let mut m = Metrics::new();
    m.insert("nfe".into(), nfe as f64);
    m
}
