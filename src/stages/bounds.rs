//! `robustness_bounds`: per-image lower bounds on the adversarial distance next to what
//! attacks found (Finlay & Oberman 2019): the L-bound and the gradient-and-curvature bound
//! with constants estimated from the images, and a certified bound from a global Lipschitz
//! constant (products of spectral norms). An attack beating an estimated bound shows the
//! estimate is not a certificate; an attack beating the certified bound is a bug.

use super::attack_outcome::{Status, median, norm_column};
use super::attacked::{ATTACKED, Attacked};
use super::dataset::DATASET;
use super::layers::check_model;
use super::model::{MODEL, model_ref};
use crate::data::Dataset;
use crate::diag::{Code, Diag};
use crate::lang::{Args, Builtin, Dflt, Kind, Metrics, Output, Param, RunCtx, Stage, StaticCall, TABLE, Ty};
use crate::plots::{Axis, LinePlot, Scaling, Series};
use crate::robust::bounds::{certified_radius, curvature_bound, lipschitz_bound, local_facts};
use crate::robust::norms::Norm;
use crate::robust::oracle::{Criterion, Oracle};

pub fn builtins() -> Vec<Builtin> {
    vec![Builtin::stage(
        "robustness_bounds",
        "Per-image lower bounds on the adversarial distance (l2 and linf): the L-bound and the gradient-and-curvature bound with constants estimated from the images (Finlay & Oberman 2019), and a certified one from the product of the layers' spectral norms; next to the distances `attacks` found.",
        vec![
            Param::new("model", Ty::kind(&MODEL), Dflt::Required, "a trained classifier"),
            Param::new("data", Ty::kind(&DATASET), Dflt::Required, "labelled inputs"),
            Param::new(
                "attacks",
                Ty::list(Ty::kind(&ATTACKED)),
                Dflt::Syms(&[]),
                "`attack` results on the same data, compared image by image in their norm",
            ),
            Param::new("labels", Ty::list(Ty::Str), Dflt::Syms(&[]), "the attacks' names (default: stage names)"),
            Param::new("count", Ty::Int, Dflt::Int(100), "the first `count` correctly classified images")
                .within(Some(1.0), None),
            Param::new("power_iters", Ty::Int, Dflt::Int(10), "power-iteration steps for each image's curvature")
                .within(Some(0.0), Some(1000.0)),
            Param::new("h", Ty::Float, Dflt::Float(1e-3), "finite-difference step of the Hessian-vector products")
                .positive(),
            Param::new("batch", Ty::Int, Dflt::Int(100), "images evaluated together").within(Some(1.0), None),
        ],
        Bounds,
    )]
}

const BOUNDS: [&str; 3] = ["lipschitz", "curvature", "certified"];

fn attack_names(args: &Args) -> Vec<String> {
    let labels = args.texts("labels");
    (0..args.stages("attacks").len()).map(|k| labels.get(k).cloned().unwrap_or_else(|| format!("attack{}", k + 1))).collect()
}

struct Bounds;

impl Stage for Bounds {
    fn output(&self) -> &'static Kind {
        &TABLE
    }
    fn metrics(&self, args: &Args) -> Vec<String> {
        let mut m: Vec<String> =
            ["images", "lipschitz_estimate", "curvature_estimate", "lipschitz_global"].map(String::from).to_vec();
        for norm in ["l2", "linf"] {
            m.extend(BOUNDS.iter().map(|b| format!("median_{b}_{norm}")));
        }
        for a in attack_names(args) {
            m.extend(["median", "beats_lipschitz", "beats_curvature", "below_certified"].map(|s| format!("{a}_{s}")));
        }
        m
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let mut d = check_model(cx, "model", "data").0;
        let (given, attacks) = (cx.args.texts("labels").len(), cx.args.stages("attacks").len());
        if given > 0 && given != attacks {
            d.push(
                Diag::new(Code::E2006, format!("{given} labels for {attacks} attacks"))
                    .at(cx.args.get("labels").map_or(cx.span, |v| v.span), "one name per attack")
                    .hint("give one label per attack, or none"),
            );
        }
        d
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let data = cx.input::<Dataset>("data")?;
        let mut rng = cx.take_rng();
        let net = model_ref(cx, "model", &data.shape, &mut rng)?;
        let candle = |e: candle_core::Error| cx.compute_error("the bounds", e);
        let labels = data.y.as_ref().ok_or_else(|| cx.error(Code::R1002, "the data has no labels"))?;
        let attacks: Vec<(String, std::sync::Arc<Attacked>)> =
            attack_names(cx.args()).into_iter().zip(cx.inputs::<Attacked>("attacks")?.into_iter().map(|a| a.1)).collect();
        let a = cx.args();
        let count = a.int("count").unwrap_or(100) as usize;
        let iters = a.int("power_iters").unwrap_or(10) as usize;
        let h = a.float("h").unwrap_or(1e-3);
        let batch = a.int("batch").unwrap_or(100) as usize;
        let lipschitz = net.lipschitz().map_err(|e| {
            cx.error(Code::R1006, format!("no certified bound for this model: {e}"))
                .hint("the estimated bounds need only gradients; the certified one needs every layer's constant")
        })?;
        let model = |t: &candle_core::Tensor| net.forward_input_grad(t);
        let oracle = Oracle::new(&model, &data.shape, (f64::NEG_INFINITY, f64::INFINITY), Criterion { top: 1 }, &cx.device);
        let row = |i: usize| -> Vec<f64> { data.row(i).iter().map(|v| *v as f64).collect() };

        // The first `count` correctly classified images, with their local facts.
        let images: Vec<(usize, usize)> = super::attacks::choose(&oracle, &data, count, batch, true)
            .map_err(candle)?
            .into_iter()
            .map(|(i, _)| (i, labels[i] as usize))
            .collect();
        let mut facts = Vec::new();
        for chunk in images.chunks(batch) {
            let xs: Vec<Vec<f64>> = chunk.iter().map(|&(i, _)| row(i)).collect();
            let ys: Vec<usize> = chunk.iter().map(|&(_, y)| y).collect();
            facts.extend(local_facts(&oracle, &xs, &ys, iters, h, &mut rng).map_err(candle)?);
        }
        if images.len() < count {
            cx.warn(Code::W2001, format!("`count: {count}`: the data holds {} correctly classified images", images.len()));
        }
        let dim = data.features() as f64;
        let l2_hat = facts.iter().map(|f| f.grad_l2).fold(0.0, f64::max);
        let l1_hat = facts.iter().map(|f| f.grad_l1).fold(0.0, f64::max);
        let c_hat = facts.iter().map(|f| f.curvature).fold(0.0, f64::max);
        // [lipschitz, curvature, certified] per image, in l2 and in linf.
        let per_image: Vec<([f64; 3], [f64; 3])> = facts
            .iter()
            .zip(&images)
            .map(|(f, &(_, y))| {
                let cert = certified_radius(&f.logits, y, |a, b| lipschitz.margin(a, b));
                let l2 = [lipschitz_bound(f.loss, l2_hat), curvature_bound(f.loss, f.grad_l2, c_hat), cert];
                // linf: dual-norm gradients; |d|_2 <= sqrt(N) |d|_inf in the curvature term
                // and the certificate.
                let linf =
                    [lipschitz_bound(f.loss, l1_hat), curvature_bound(f.loss, f.grad_l1, c_hat * dim), cert / dim.sqrt()];
                (l2, linf)
            })
            .collect();

        let mut metrics = Metrics::new();
        metrics.insert("images".into(), images.len() as f64);
        metrics.insert("lipschitz_estimate".into(), l2_hat);
        metrics.insert("curvature_estimate".into(), c_hat);
        metrics.insert("lipschitz_global".into(), lipschitz.total());
        for (k, b) in BOUNDS.iter().enumerate() {
            metrics.insert(format!("median_{b}_l2"), median(&mut per_image.iter().map(|p| p.0[k]).collect::<Vec<_>>()));
            metrics.insert(format!("median_{b}_linf"), median(&mut per_image.iter().map(|p| p.1[k]).collect::<Vec<_>>()));
        }
        // Each attack's distance on the images it attacked, in its own norm.
        let mut columns: Vec<Vec<Option<f64>>> = Vec::new();
        for (name, att) in &attacks {
            let col = norm_column(att.norm);
            let found: std::collections::HashMap<usize, f64> = att
                .outcomes
                .iter()
                .filter(|o| o.status != Status::Misclassified)
                .map(|o| (o.index, if o.status == Status::Broken { o.dist[col] } else { f64::INFINITY }))
                .collect();
            let dist: Vec<Option<f64>> = images.iter().map(|(i, _)| found.get(i).copied()).collect();
            let pick = |p: &([f64; 3], [f64; 3])| if att.norm == Norm::Linf { p.1 } else { p.0 };
            let pairs: Vec<(f64, [f64; 3])> =
                dist.iter().zip(&per_image).filter_map(|(d, p)| d.map(|d| (d, pick(p)))).collect();
            if att.norm != Norm::L2 && att.norm != Norm::Linf {
                cx.warn(Code::W2001, format!("`{name}` minimised {}: bounds are in l2 and linf", att.norm.name()));
            }
            let n = pairs.len().max(1) as f64;
            let beats = |k: usize| pairs.iter().filter(|(d, b)| *d < b[k]).count() as f64;
            metrics.insert(format!("{name}_median"), median(&mut pairs.iter().map(|p| p.0).collect::<Vec<_>>()));
            metrics.insert(format!("{name}_beats_lipschitz"), beats(0) / n);
            metrics.insert(format!("{name}_beats_curvature"), beats(1) / n);
            // Float32 rounding of the returned image: a margin of one part in a million.
            let below = pairs.iter().filter(|(d, b)| *d < b[2] * (1.0 - 1e-6)).count();
            metrics.insert(format!("{name}_below_certified"), below as f64);
            if below > 0 {
                cx.warn(
                    Code::W2001,
                    format!("`{name}` found {below} perturbations below the certified bound: please report this"),
                );
            }
            columns.push(dist);
        }
        let mut files = vec![write_table(cx, &images, &facts, &per_image, &attacks, &columns)?];
        files.extend(write_figure(cx, &per_image, &attacks, &columns)?);
        Ok(Output::nothing(&TABLE, metrics, files))
    }
}

fn write_table(
    cx: &RunCtx,
    images: &[(usize, usize)],
    facts: &[crate::robust::bounds::Local],
    per_image: &[([f64; 3], [f64; 3])],
    attacks: &[(String, std::sync::Arc<Attacked>)],
    columns: &[Vec<Option<f64>>],
) -> Result<String, Diag> {
    let mut csv = String::from("index,label,loss,grad_l2,grad_l1,curvature");
    for norm in ["l2", "linf"] {
        for b in BOUNDS {
            csv.push_str(&format!(",{b}_{norm}"));
        }
    }
    for (name, a) in attacks {
        csv.push_str(&format!(",{name}_{}", a.norm.name()));
    }
    csv.push('\n');
    for (k, ((i, y), f)) in images.iter().zip(facts).enumerate() {
        csv.push_str(&format!("{i},{y},{},{},{},{}", f.loss, f.grad_l2, f.grad_l1, f.curvature));
        for v in per_image[k].0.iter().chain(&per_image[k].1) {
            csv.push_str(&format!(",{v}"));
        }
        for c in columns {
            csv.push_str(&c[k].map_or(",".into(), |d| format!(",{d}")));
        }
        csv.push('\n');
    }
    cx.write_file("bounds.csv", csv.as_bytes())
}

/// A named step curve: (name, (xs, ys)).
type Curve = (String, (Vec<f64>, Vec<f64>));

/// The fraction of images whose bound (or attack distance) is below each distance, per
/// norm, on a log axis: bounds lie left of every attack's curve, or they are not bounds.
fn write_figure(
    cx: &RunCtx,
    per_image: &[([f64; 3], [f64; 3])],
    attacks: &[(String, std::sync::Arc<Attacked>)],
    columns: &[Vec<Option<f64>>],
) -> Result<Vec<String>, Diag> {
    let cdf = |mut v: Vec<f64>| -> (Vec<f64>, Vec<f64>) {
        v.retain(|d| d.is_finite() && *d > 0.0);
        v.sort_by(f64::total_cmp);
        let n = per_image.len().max(1) as f64;
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for (k, d) in v.iter().enumerate() {
            xs.extend([*d, *d]);
            ys.extend([k as f64 / n, (k + 1) as f64 / n]);
        }
        (xs, ys)
    };
    let names = ["L-bound (estimated)", "curvature bound (estimated)", "certified (global Lipschitz)"];
    let mut files = Vec::new();
    for (norm, linf) in [("l2", false), ("linf", true)] {
        let mut curves: Vec<Curve> = (0..3)
            .map(|k| (names[k].to_string(), cdf(per_image.iter().map(|p| if linf { p.1[k] } else { p.0[k] }).collect())))
            .collect();
        for ((name, a), col) in attacks.iter().zip(columns) {
            if (a.norm == Norm::Linf) == linf && matches!(a.norm, Norm::L2 | Norm::Linf) {
                curves.push((format!("{name} (attack)"), cdf(col.iter().flatten().copied().collect())));
            }
        }
        let plot = LinePlot {
            title: &format!("Lower bounds and attacks, {norm}"),
            x: Axis::new(format!("{norm} distance"), Scaling::Log),
            y: Axis::new("fraction of images below", Scaling::Linear),
            series: curves.iter().map(|(n, c)| Series::xy(n, &c.0, &c.1)).collect(),
        };
        files.extend(super::plots::write_figure(cx, &format!("bounds_{norm}"), plot.render())?);
    }
    Ok(files)
}
