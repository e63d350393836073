//! Regression networks on named test functions (`regress`), the networks whose Gaussian
//! averages `heat_smoothing(..., outputs: identity)` computes; each function's average is
//! known in closed form, which `regress` reports next to the network's fit.

use super::dataset::DATASET;
use super::layers::check_shapes;
use super::model::{MODEL, ModelArg, Trained, TRAINED, model_arg};
use super::optim::OPTIMIZER;
use crate::data::Dataset;
use crate::data::functions::{FUNCTIONS, value};
use crate::diag::{Code, Diag};
use crate::lang::{Args, Builtin, Dflt, Kind, Meta, Metrics, Output, Param, RunCtx, Stage, StaticCall, Ty};
use crate::nn::{Net, fit_function, frozen, input_batch};
use crate::plots::{Axis, LinePlot, Scaling, Series};
use candle_core::{DType, Tensor};
use std::sync::Arc;

pub fn builtins() -> Vec<Builtin> {
    vec![Builtin::stage(
        "regress",
        "Fit a regression network to a named function of its inputs by mean squared error: `quadratic` (sum x_i^2), `sine` (sum sin 2x_i), `step` (1[x_0 > 0]) or `abs` (sum |x_i|).",
        vec![
            Param::new("model", Ty::kind(&MODEL), Dflt::Required, "layers with one output"),
            Param::new("data", Ty::kind(&DATASET), Dflt::Required, "inputs (`uniform(...)`); labels are not read"),
            Param::new("function", Ty::choice(&FUNCTIONS), Dflt::Required, "the target function"),
            Param::new("iters", Ty::Int, Dflt::Int(2000), "optimizer steps").within(Some(1.0), None),
            Param::new("batch", Ty::Int, Dflt::Int(128), "minibatch size").within(Some(1.0), None),
            Param::new("optimizer", Ty::kind(&OPTIMIZER), Dflt::Config("adam"), "`adam(...)` or `sgd(...)`"),
        ],
        Regress,
    )]
}

struct Regress;

/// The named function on every row of a batch, as a `[n, 1]` tensor.
fn target(name: &str, x: &Tensor) -> candle_core::Result<Tensor> {
    let n = x.dim(0)?;
    let rows: Vec<Vec<f64>> = x.to_dtype(DType::F64)?.reshape((n, ()))?.to_vec2()?;
    let y: Vec<f32> = rows.iter().map(|r| value(name, r).unwrap_or(f64::NAN) as f32).collect();
    Tensor::from_vec(y, (n, 1), x.device())
}

impl Stage for Regress {
    fn output(&self) -> &'static Kind {
        &TRAINED
    }
    fn metrics(&self, _args: &Args) -> Vec<String> {
        ["final_mse", "data_mse", "parameters"].map(String::from).to_vec()
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let (mut d, widths) = check_shapes(cx, "model", "data");
        if let Some((_, outputs)) = widths
            && outputs != 1
        {
            d.push(
                Diag::new(Code::E4001, format!("a regression network here has one output; this model has {outputs}"))
                    .at(cx.args.get("model").map_or(cx.span, |v| v.span), "ends in more than one unit")
                    .hint("end the model with `linear(1)`"),
            );
        }
        d
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        let widths = check_shapes(cx, "model", "data").1;
        Meta { shape: widths.map(|w| w.0), classes: None, ..Meta::default() }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let data = cx.input::<Dataset>("data")?;
        let a = cx.args();
        let name = a.text("function").unwrap_or("quadratic").to_string();
        let (iters, batch) = (a.int("iters").unwrap_or(2000) as usize, a.int("batch").unwrap_or(128) as usize);
        let optimizer = cx.lower("optimizer")?;
        let mut rng = cx.take_rng();
        let model = match model_arg(cx, "model")? {
            ModelArg::Layers(specs) => Net::init(&specs, &data.shape, &mut rng, &cx.device),
            ModelArg::Trained(t) => frozen(&t.model, &cx.device),
        }
        .map_err(|e| cx.compute_error("the regression network", e))?;
        let f = |x: &Tensor| target(&name, x);
        let losses = fit_function(&model, &data, &f, &optimizer, batch, iters, &mut rng, &cx.device)
            .map_err(|e| cx.error(Code::R2001, format!("regression failed: {e}")).hint("lower the learning rate"))?;
        let all: Vec<usize> = (0..data.n).collect();
        let x = input_batch(&data, &all, &cx.device).map_err(|e| cx.compute_error("the regression network", e))?;
        let fit: Vec<f32> = model
            .forward(&x)
            .and_then(|o| o.flatten_all())
            .and_then(|o| o.to_vec1())
            .map_err(|e| cx.compute_error("the regression network", e))?;
        let truth: Vec<f64> = (0..data.n)
            .map(|i| value(&name, &data.row(i).iter().map(|v| *v as f64).collect::<Vec<_>>()).unwrap_or(f64::NAN))
            .collect();
        let mse = fit.iter().zip(&truth).map(|(p, t)| (*p as f64 - t).powi(2)).sum::<f64>() / data.n.max(1) as f64;
        let mut metrics = Metrics::new();
        metrics.insert("final_mse".into(), super::flow_train::mean(super::flow_train::last_tenth(&losses).iter().copied()));
        metrics.insert("data_mse".into(), mse);
        metrics.insert("parameters".into(), model.parameter_count() as f64);
        let mut files = Vec::new();
        if data.shape == [1] {
            let mut pts: Vec<(f64, f64, f64)> =
                (0..data.n).map(|i| (data.row(i)[0] as f64, truth[i], fit[i] as f64)).collect();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
            let (t, p): (Vec<f64>, Vec<f64>) = (pts.iter().map(|p| p.1).collect(), pts.iter().map(|p| p.2).collect());
            let plot = LinePlot {
                title: &format!("Regression network on `{name}`"),
                x: Axis::new("x", Scaling::Linear),
                y: Axis::new("f(x)", Scaling::Linear),
                series: vec![Series::xy(&name, &xs, &t), Series::xy("network", &xs, &p)],
            };
            files.extend(super::plots::write_figure(cx, "fit", plot.render())?);
        }
        Ok(Output { artifact: Arc::new(Trained { model, classes: None, curves: None }), metrics, files })
    }
}
