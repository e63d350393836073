//! Training a flow of entropic Kantorovich potentials by its dual (no ODE solve), and its
//! likelihood in closed form: `train(potential_flow(...), data, loss: entropic_dual)`
//! (each potential's own concave objective) or `loss: entropic_alternating` (the joint dual,
//! ascended in phi and in psi in turn).

use super::flow_train::{last_tenth, lengths, mean, tensor};
use super::flow_trained::{FlowTrained, KEPT_POINTS, TrainingLog};
use super::flows::FlowSpec;
use crate::data::Dataset;
use crate::diag::{Code, Diag};
use crate::flow::BuiltFlow;
use crate::lang::{Metrics, Output, RunCtx};
use crate::nn::OptimSpec;
use crate::plots::{Axis, LinePlot, Scaling, Series};
use crate::potential::{DualFit, DualRecord, HeatRule, PotentialFlow, Scheme, fit_dual};
use crate::rng::Rng;
use candle_core::{DType, Tensor};
use std::sync::Arc;

/// `train`'s numbers for a potential flow, means over the last tenth of the iterations.
pub const TRAIN_METRICS: [&str; 5] =
    ["final_loss", "final_phi_objective", "final_psi_objective", "steps", "parameters"];

/// The losses that train a potential flow.
pub const LOSSES: [&str; 2] = ["entropic_dual", "entropic_alternating"];

/// Normal draws for the closed form's normalising constant.
const NORMALISER_DRAWS: usize = 20_000;

pub fn train(cx: &mut RunCtx, spec: FlowSpec) -> Result<Output, Diag> {
    let Some(p) = spec.potential.clone() else {
        return Err(cx.error(Code::R1006, "not a potential flow"));
    };
    let data = cx.input::<Dataset>("data")?;
    let optimizer: OptimSpec = cx.lower("optimizer")?;
    let scheme =
        if cx.args().text("loss") == Some("entropic_alternating") { Scheme::Alternating } else { Scheme::SemiDual };
    let (batch, iters) = lengths(cx, data.n);
    let mut rng = cx.take_rng();
    let flow = spec
        .build(&data.shape, &mut rng, &cx.device)
        .map_err(|e| cx.error(Code::R1006, format!("cannot build the flow: {e}")))?;
    let BuiltFlow::Potential(potentials) = &flow else {
        return Err(cx.error(Code::R1006, "a potential flow built as another flow"));
    };
    let x = tensor(cx, &data)?;
    let quadrature = p.gauss_hermite.map(|k| HeatRule::gauss_hermite(k, data.features()));
    let cfg = DualFit { iters, batch, mc_samples: p.mc_samples, optimizer, scheme, quadrature };
    let bar = cx.progress.bar(iters as u64, cx.name());
    let result = fit_dual(potentials, &x, &cfg, &mut rng, |i, r| {
        if i % 5 == 0 {
            bar.set_position(i as u64);
            bar.set_message(format!("loss {:.4}", r.loss));
        }
    });
    bar.finish_and_clear();
    let records = result.map_err(|(why, _)| {
        let d = cx.error(Code::R2001, format!("training the potentials of `{}`: {why}", cx.name()));
        if why.contains("exploit") {
            d.hint("a finer rule (`nodes: 9`), the Monte-Carlo estimator (`heat: monte_carlo`, fresh draws each step) or a larger `eps`")
        } else {
            d.hint("lower the learning rate; with `entropic_alternating` the coupling term is an exponential and can overflow, `entropic_dual` is the stable objective")
        }
    })?;
    let tail = last_tenth(&records);
    let mut metrics = Metrics::new();
    metrics.insert("final_loss".into(), mean(tail.iter().map(|r| r.loss)));
    metrics.insert("final_phi_objective".into(), mean(tail.iter().map(|r| r.phi)));
    metrics.insert("final_psi_objective".into(), mean(tail.iter().map(|r| r.psi)));
    metrics.insert("steps".into(), records.len() as f64);
    metrics.insert("parameters".into(), flow.parameter_count() as f64);
    let files = plot_training(cx, &records, scheme)?;
    let kept = data.n.min(KEPT_POINTS) * data.features();
    let trained = FlowTrained {
        spec,
        shape: data.shape.clone(),
        flow,
        records: TrainingLog::Dual(records),
        data: data.x[..kept].to_vec(),
    };
    Ok(Output { artifact: Arc::new(trained), metrics, files })
}

/// The objectives per iteration (moving average).
fn plot_training(cx: &RunCtx, records: &[DualRecord], scheme: Scheme) -> Result<Vec<String>, Diag> {
    let window = (records.len() / 50).clamp(1, 50);
    let avg =
        |f: fn(&DualRecord) -> f64| super::plots::moving_average(&records.iter().map(f).collect::<Vec<_>>(), window);
    let (phi, psi) = (avg(|r| r.phi), avg(|r| r.psi));
    let labels = match scheme {
        Scheme::SemiDual => [
            "phi's objective E_D[phi] - E_N[eps log H e^(phi/eps)]",
            "psi's objective E_N[psi] - E_D[eps log H e^(psi/eps)]",
        ],
        Scheme::Alternating => ["joint dual after the phi step", "joint dual after the psi step"],
    };
    let series = vec![Series::steps(labels[0], &phi), Series::steps(labels[1], &psi)];
    super::plots::write_figure(
        cx,
        "objective_curve",
        LinePlot {
            title: &format!("Dual objectives of `{}` (moving average, {window} iterations)", cx.name()),
            x: Axis::new("iteration", Scaling::Integer),
            y: Axis::new("objective (batch, higher is better)", Scaling::Linear),
            series,
        }
        .render(),
    )
}

/// log Z of the closed-form density, warning when its Monte-Carlo error is not small.
pub fn normaliser(cx: &mut RunCtx, flow: &PotentialFlow, rng: &mut Rng) -> Result<f64, Diag> {
    let (log_z, rel) = flow
        .log_normaliser(NORMALISER_DRAWS, rng, DType::F32, &cx.device)
        .map_err(|e| cx.compute_error("the closed form's normalising constant", e))?;
    if rel > 0.05 {
        cx.warn(
            Code::W2002,
            format!(
                "the closed form's normalising constant has a relative Monte-Carlo error of {rel:.3} over {NORMALISER_DRAWS} normal draws: the potentials are far from solving the Schroedinger system (where they solve it the estimate is exact): train them longer"
            ),
        );
    }
    Ok(log_z)
}

/// The mean NLL of x [n, d] by the closed form, normalised over normal draws.
pub fn closed_form_nll(cx: &mut RunCtx, flow: &PotentialFlow, x: &Tensor, rng: &mut Rng) -> Result<f64, Diag> {
    let log_z = normaliser(cx, flow, rng)?;
    let n = x.dim(0).map_err(|e| cx.compute_error("the data", e))?;
    let mut total = 0.0;
    for start in (0..n).step_by(1000) {
        let xb = x.narrow(0, start, 1000.min(n - start)).map_err(|e| cx.compute_error("the data", e))?;
        let log_p = flow
            .closed_form_log_density(&xb, log_z)
            .and_then(|l| l.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>())
            .map_err(|e| cx.compute_error("the closed-form density", e))?;
        total += log_p;
    }
    Ok(-total / n.max(1) as f64)
}
