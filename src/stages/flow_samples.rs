//! `sample_grid`: images drawn from a trained image flow (base draws integrated back through
//! its blocks), as FFJORD and RNODE show their MNIST samples, with training images beside
//! them for comparison; reports the NFE of the sampling solves.

use super::flow_trained::FlowTrained;
use crate::diag::{Code, Diag};
use crate::lang::{Args, FIGURE, Kind, Metrics, Output, RunCtx, Stage};
use crate::plots::ImageGrid;
use candle_core::{DType, Tensor};

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
        let (scales, stats) = f
            .flow
            .sample(count, &f.spec.solver, &mut rng, DType::F32, &cx.device)
            .map_err(|e| cx.error(Code::R1006, format!("sampling the flow: {}", e.failure)))?;
        let shapes = f.flow.sample_shapes();
        let data = Tensor::from_vec(f.data.clone(), (f.data.len() / f.dim().max(1), f.dim()), &cx.device)
            .map_err(|e| cx.compute_error("the training images", e))?;
        let mut files = Vec::new();
        // The finest resolution is `samples`; a multi-resolution flow adds one grid per
        // coarser resolution (the same draws, before their finer details), its training
        // images averaged down to match.
        let finest = shapes.len() - 1;
        for (k, (x, shape)) in scales.iter().zip(&shapes).enumerate() {
            let values = x
                .clamp(0f32, 1f32)
                .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
                .map_err(|e| cx.compute_error("the samples", e))?;
            let pooled = average_down(&data, &shapes[finest], finest - k)
                .map_err(|e| cx.compute_error("the training images", e))?;
            let name = if k == finest { "samples".to_string() } else { format!("samples_{}x{}", shape[1], shape[2]) };
            let resolution = (shapes.len() > 1).then(|| format!(" at {}x{}", shape[1], shape[2]));
            files.extend(grid(cx, &name, &values, if with_data { &pooled } else { &[] }, shape, count, resolution)?);
        }
        Ok(Output::nothing(&FIGURE, metrics(stats.nfe), files))
    }
}

/// Rows of images `shape` averaged over 2x2 blocks `times` times, flattened.
fn average_down(x: &Tensor, shape: &[usize], times: usize) -> candle_core::Result<Vec<f32>> {
    let mut x = x.clone();
    let mut s = [shape[0], shape[1], shape[2]];
    for _ in 0..times {
        x = crate::flow::resolution::split(&x, s)?.0;
        s = [s[0], s[1] / 2, s[2] / 2];
    }
    x.flatten_all()?.to_vec1::<f32>()
}

/// One figure: `count` samples in a block on the left, as many training images in one on
/// the right (missing cells white, unseen on the page).
fn grid(
    cx: &RunCtx,
    name: &str,
    values: &[f32],
    data: &[f32],
    shape: &[usize],
    count: usize,
    resolution: Option<String>,
) -> Result<Vec<String>, Diag> {
    let dim: usize = shape.iter().product();
    let shown = (data.len() / dim).min(count);
    let side = (count as f64).sqrt().ceil() as usize;
    let blank = vec![1f32; dim];
    let samples: Vec<&[f32]> = values.chunks(dim).collect();
    let data: Vec<&[f32]> = data.chunks(dim).take(shown).collect();
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
    let at = resolution.unwrap_or_default();
    let title = super::plots::title(cx, || match shown {
        0 => format!("{count} samples{at}"),
        _ => format!("{count} samples and {shown} training images{at}"),
    });
    let grid = ImageGrid {
        title: &title,
        images: &images,
        shape,
        captions: &captions,
        columns: Some(if shown > 0 { 2 * side } else { side }),
        headings: &headings,
    };
    super::plots::write_figure(cx, name, grid.render())
}

fn metrics(nfe: usize) -> Metrics {
    let mut m = Metrics::new();
    m.insert("nfe".into(), nfe as f64);
    m
}
