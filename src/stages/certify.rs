//! Certification from Gaussian noise: the `certifier` kind (`randomized_smoothing(...)`,
//! Cohen et al. 2019, and `gaussian_average(...)`, the one-evaluation certificate of a
//! deterministically averaged model), the `certify` stage and `certified_plot`, which
//! overlays methods. `heat_smoothing` (its own file) makes the averaged models.

use super::attack_outcome::median;
use super::attacks::ATTACK;
use super::certified::{CERTIFIED, Certified, Row};
use super::certify_attacks::{Verdict, attack_certified};
use super::dataset::DATASET;
use super::layers::check_model;
use super::model::{MODEL, model_ref};
use crate::certify::average::{radius_of_gap, top_gap};
use crate::certify::smoothing::Smoothing;
use crate::data::Dataset;
use crate::diag::{Code, Diag};
use crate::lang::{Args, Builtin, Dflt, FIGURE, Kind, Metrics, Output, Param, Registry, Role, RunCtx, Stage, StaticCall, Ty};
use crate::plots::{Axis, LinePlot, Scaling, Series};
use crate::robust::attack::Attack;
use candle_core::{D, Tensor};
use std::any::TypeId;
use std::sync::Arc;

pub static CERTIFIER: Kind = Kind {
    name: "certifier",
    describe: "a certification method such as `randomized_smoothing(sigma: 0.25)`",
    supers: &[],
    role: Role::Config {
        noun: "certifier",
        heading: "certifiers",
        lowers_to: TypeId::of::<Method>,
        lowers_to_name: "Method",
        chains: false,
    },
};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    Smoothing(Smoothing),
    /// The model is (approximately) the Gaussian average at sigma of a [0, 1]-valued
    /// classifier: certify from its softmax gap.
    Average { sigma: f64 },
}

impl Method {
    pub fn sigma(&self) -> f64 {
        match self {
            Method::Smoothing(s) => s.sigma,
            Method::Average { sigma } => *sigma,
        }
    }
    fn name(&self) -> &'static str {
        match self {
            Method::Smoothing(_) => "randomized_smoothing",
            Method::Average { .. } => "gaussian_average",
        }
    }
}

const RADII: [f64; 4] = [0.25, 0.5, 1.0, 1.5];

pub fn builtins() -> Vec<Builtin> {
    let cohen = Smoothing::cohen(0.25);
    let sigma = || Param::new("sigma", Ty::Float, Dflt::Required, "noise level in input units (MNIST: 0.25, 0.5, 1.0)").positive();
    let mut all = vec![
        Builtin::config(
            &CERTIFIER,
            "randomized_smoothing",
            "Randomized smoothing (Cohen, Rosenfeld & Kolter 2019): the class the base model predicts most often under N(0, sigma^2 I) noise, certified by CERTIFY (n0 selection draws, n estimation draws, a Clopper-Pearson bound p_A at level alpha, radius sigma Phi^-1(p_A), abstaining when p_A < 1/2).",
            vec![
                sigma(),
                Param::new("n0", Ty::Int, Dflt::Int(cohen.n0 as i64), "selection draws").within(Some(1.0), None),
                Param::new("n", Ty::Int, Dflt::Int(cohen.n as i64), "estimation draws").within(Some(1.0), None),
                Param::new("alpha", Ty::Float, Dflt::Float(cohen.alpha), "failure probability of each certificate").within(Some(0.0), Some(0.5)),
                Param::new("batch", Ty::Int, Dflt::Int(cohen.batch as i64), "noisy copies per model call").within(Some(1.0), None),
            ],
            |_: &Registry, a: &Args| {
                Ok(Method::Smoothing(Smoothing {
                    sigma: a.need_float("sigma")?,
                    n0: a.need_usize("n0")?,
                    n: a.need_usize("n")?,
                    alpha: a.need_float("alpha")?,
                    batch: a.need_usize("batch")?,
                }))
            },
        )
        .positional("sigma"),
        Builtin::config(
            &CERTIFIER,
            "gaussian_average",
            "The deterministic certificate of a Gaussian-averaged model (Campbell, Finlay & Oberman): one evaluation, radius sigma sqrt(pi/2) (v_(1) - v_(2)) from the softmax's top two; exact when the model is the Gaussian average at sigma (`heat_smoothing`).",
            vec![sigma()],
            |_: &Registry, a: &Args| Ok(Method::Average { sigma: a.need_float("sigma")? }),
        )
        .positional("sigma"),
        Builtin::stage(
            "certify",
            "Certified l2 robustness of the first `count` labelled images: certified accuracy at each radius, abstention, model evaluations and time per image; with `attacks`, how often an attack on the smoothed classifier succeeds inside the claimed radius.",
            vec![
                Param::new("model", Ty::kind(&MODEL), Dflt::Required, "the base classifier (smoothing) or the averaged one (gaussian_average)"),
                Param::new("data", Ty::kind(&DATASET), Dflt::Required, "labelled inputs"),
                Param::new("method", Ty::kind(&CERTIFIER), Dflt::Required, "`randomized_smoothing(sigma: 0.25)` or `gaussian_average(sigma: 0.25)`"),
                Param::new("radii", Ty::list(Ty::Float), Dflt::Syms(&[]), "radii the certified accuracy is reported at (default [0.25, 0.5, 1.0, 1.5])"),
                Param::new("count", Ty::Int, Dflt::Int(100), "images certified").within(Some(1.0), None),
                Param::new("attacks", Ty::list(Ty::kind(&ATTACK)), Dflt::Syms(&[]), "attacks run against the smoothed classifier on the certified images"),
                Param::new("attack_count", Ty::Int, Dflt::Int(100), "at most this many certified images attacked").within(Some(1.0), None),
                Param::new("attack_draws", Ty::Int, Dflt::Int(32), "smoothing: fixed noise draws of the Monte-Carlo soft classifier the attacks differentiate").within(Some(1.0), Some(100000.0)),
                Param::new("predict_draws", Ty::Int, Dflt::Int(10000), "smoothing: PREDICT's draws judging each attack's point").within(Some(1.0), None),
                Param::new("batch", Ty::Int, Dflt::Int(100), "images evaluated together").within(Some(1.0), None),
            ],
            Certify,
        ),
        Builtin::stage(
            "certified_plot",
            "Certified accuracy against the l2 radius, one curve per `certify` result.",
            vec![
                Param::new("results", Ty::list(Ty::kind(&CERTIFIED)), Dflt::Required, "`certify` results"),
                Param::new("labels", Ty::list(Ty::Str), Dflt::Syms(&[]), "names (default: stage names)"),
                Param::new("title", Ty::opt(Ty::Str), Dflt::None, "figure title (default: the stage name)"),
            ],
            CertifiedPlot,
        ),
    ];
    all.extend(super::heat_smoothing::builtins());
    all
}

fn radii(args: &Args) -> Vec<f64> {
    match args.floats("radii") {
        Some(v) if !v.is_empty() => v,
        _ => RADII.to_vec(),
    }
}

/// `certified_0_25` for radius 0.25.
fn at(r: f64) -> String {
    format!("certified_{}", format!("{r}").replace(['.', '-'], "_"))
}

/// An attack's name in metrics: its built-in, numbered when it repeats.
fn attack_names(args: &Args) -> Vec<String> {
    let names: Vec<String> = args.configs("attacks").iter().map(|(c, _)| c.builtin.to_string()).collect();
    names
        .iter()
        .enumerate()
        .map(|(k, n)| {
            let repeats = names.iter().filter(|m| *m == n).count() > 1;
            if repeats { format!("{n}{}", names[..=k].iter().filter(|m| *m == n).count()) } else { n.clone() }
        })
        .collect()
}

struct Certify;

impl Stage for Certify {
    fn output(&self) -> &'static Kind {
        &CERTIFIED
    }
    fn metrics(&self, args: &Args) -> Vec<String> {
        let mut m: Vec<String> =
            ["images", "accuracy", "abstain_rate", "median_radius", "evaluations_per_image"].map(String::from).to_vec();
        m.extend(radii(args).into_iter().map(at));
        for a in attack_names(args) {
            m.extend(["attacked", "success_rate", "below_radius", "median_distance_ratio"].map(|s| format!("{a}_{s}")));
        }
        m
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let mut d = check_model(cx, "model", "data").0;
        if let Some(r) = cx.args.floats("radii")
            && r.iter().any(|v| *v < 0.0)
        {
            d.push(
                Diag::new(Code::E2003, "a certified radius cannot be negative")
                    .at(cx.args.get("radii").map_or(cx.span, |v| v.span), "negative radius")
                    .hint("radii are l2 distances, e.g. `[0.25, 0.5, 1.0]`"),
            );
        }
        d
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let data = cx.input::<Dataset>("data")?;
        let mut rng = cx.take_rng();
        let net = model_ref(cx, "model", &data.shape, &mut rng)?;
        let method: Method = cx.lower("method")?;
        let attacks: Vec<Attack> = cx
            .args()
            .configs("attacks")
            .into_iter()
            .map(|(c, _)| cx.lower_config::<Attack>(c))
            .collect::<Result<_, _>>()?;
        let labels = data.y.clone().ok_or_else(|| cx.error(Code::R1002, "certification needs labelled data"))?;
        let a = cx.args();
        let count = a.int("count").unwrap_or(100) as usize;
        let batch = a.int("batch").unwrap_or(100) as usize;
        let attack_count = a.int("attack_count").unwrap_or(100) as usize;
        let attack_draws = a.int("attack_draws").unwrap_or(32) as usize;
        let predict_draws = a.int("predict_draws").unwrap_or(10000) as usize;
        let names = attack_names(a);
        let radii = radii(a);
        let n = count.min(data.n);
        if n < count {
            cx.warn(Code::W2001, super::clamp::message("count", count, data.n));
        }
        let classes = data.classes.or_else(|| net.output.last().copied()).unwrap_or(2);
        let bar = cx.progress.bar(n as u64, cx.name());
        let clock = std::time::Instant::now();
        let mut rows = Vec::with_capacity(n);
        match method {
            Method::Smoothing(s) => {
                let mut classify = |x: &Tensor| -> candle_core::Result<Vec<u32>> { net.forward(x)?.argmax(D::Minus1)?.to_vec1() };
                for (i, &label) in labels.iter().enumerate().take(n) {
                    let c = s.certify(&mut classify, data.row(i), &data.shape, classes, &mut rng, &cx.device).map_err(|e| cx.compute_error("certification", e))?;
                    rows.push(Row {
                        index: i,
                        label: label as usize,
                        class: c.class,
                        radius: c.radius,
                        score: c.p_lower,
                        evaluations: c.evaluations,
                    });
                    bar.inc(1);
                }
            }
            Method::Average { sigma } => {
                for start in (0..n).step_by(batch.max(1)) {
                    let idx: Vec<usize> = (start..(start + batch).min(n)).collect();
                    let probs = softmax_rows(&net, &data, &idx, &cx.device).map_err(|e| cx.compute_error("certification", e))?;
                    for (&i, p) in idx.iter().zip(&probs) {
                        let (class, gap) = top_gap(p);
                        let radius = radius_of_gap(gap, sigma);
                        rows.push(Row { index: i, label: labels[i] as usize, class: Some(class), radius, score: gap, evaluations: 1 });
                    }
                    bar.inc(idx.len() as u64);
                }
            }
        }
        let seconds = clock.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let certified = Certified { method: method.name().into(), sigma: method.sigma(), rows };

        let mut metrics = Metrics::new();
        let images = certified.rows.len().max(1) as f64;
        metrics.insert("images".into(), certified.rows.len() as f64);
        metrics.insert("accuracy".into(), certified.accuracy_at(0.0));
        metrics.insert("abstain_rate".into(), certified.rows.iter().filter(|r| r.class.is_none()).count() as f64 / images);
        let mut correct: Vec<f64> =
            certified.rows.iter().filter(|r| r.class == Some(r.label)).map(|r| r.radius).collect();
        metrics.insert("median_radius".into(), median(&mut correct));
        let evaluations: usize = certified.rows.iter().map(|r| r.evaluations).sum();
        metrics.insert("evaluations_per_image".into(), evaluations as f64 / images);
        for r in &radii {
            metrics.insert(at(*r), certified.accuracy_at(*r));
        }

        // Attacks on the certified images: an attack inside the claimed radius.
        let mut cost = format!(
            "what,images,seconds,seconds_per_image,evaluations_per_image\ncertify,{},{seconds},{},{}\n",
            certified.rows.len(),
            seconds / images,
            evaluations as f64 / images
        );
        let mut attack_csv = String::from("attack,index,label,radius,found,distance,verified_class,below_radius\n");
        let targets: Vec<&Row> = certified.rows.iter().filter(|r| r.class == Some(r.label)).take(attack_count).collect();
        for (attack, name) in attacks.iter().zip(&names) {
            let clock = std::time::Instant::now();
            let verdicts = attack_certified(
                &net,
                &data,
                &targets,
                attack,
                &method,
                attack_draws,
                predict_draws,
                batch,
                cx.meta_of("data").and_then(|m| m.bounds),
                classes,
                &mut rng,
                &cx.device,
            )
            .map_err(|e| cx.compute_error("certification", e))?;
            let seconds = clock.elapsed().as_secs_f64();
            let attacked = verdicts.len().max(1) as f64;
            let broken: Vec<&Verdict> = verdicts.iter().filter(|v| v.verified.is_some()).collect();
            let below = broken.iter().filter(|v| v.distance < v.radius).count();
            let mut ratios: Vec<f64> = broken.iter().map(|v| v.distance / v.radius.max(1e-12)).collect();
            metrics.insert(format!("{name}_attacked"), verdicts.len() as f64);
            metrics.insert(format!("{name}_success_rate"), broken.len() as f64 / attacked);
            metrics.insert(format!("{name}_below_radius"), below as f64 / attacked);
            metrics.insert(format!("{name}_median_distance_ratio"), median(&mut ratios));
            cost.push_str(&format!("{name},{},{seconds},{},\n", verdicts.len(), seconds / attacked));
            for v in &verdicts {
                let class = v.verified.map_or(String::new(), |c| c.to_string());
                let found = v.distance.is_finite();
                let distance = if found { format!("{}", v.distance) } else { String::new() };
                let below = v.verified.is_some() && v.distance < v.radius;
                attack_csv.push_str(&format!("{name},{},{},{},{found},{distance},{class},{below}\n", v.index, v.label, v.radius));
            }
            if below > 0 {
                let within = match method {
                    Method::Smoothing(s) => {
                        format!("randomized smoothing allows a fraction alpha = {} of wrong certificates", s.alpha)
                    }
                    Method::Average { .. } => {
                        "the deterministic certificate is exact only for an exact Gaussian average".into()
                    }
                };
                cx.warn(
                    Code::W2001,
                    format!("`{name}` broke {below} of {} certified images inside their radius ({within})", verdicts.len()),
                );
            }
        }
        let mut files = vec![cx.write_file("cost.csv", cost.as_bytes())?];
        if !attacks.is_empty() {
            files.push(cx.write_file("attacks.csv", attack_csv.as_bytes())?);
        }
        let (xs, ys) = certified.curve();
        let label = format!("{} (sigma = {})", method.name().replace('_', " "), method.sigma());
        let plot = LinePlot {
            title: &format!("Certified accuracy, {}", cx.name()),
            x: Axis::new("l2 radius", Scaling::Linear),
            y: Axis::new("certified accuracy", Scaling::Linear),
            series: vec![Series::xy(&label, &xs, &ys)],
        };
        files.extend(super::plots::write_figure(cx, "certified", plot.render())?);
        Ok(Output { artifact: Arc::new(certified), metrics, files })
    }
}

/// Softmax outputs of rows `idx`, on the host.
pub(super) fn softmax_rows(net: &crate::nn::Net, data: &Dataset, idx: &[usize], device: &candle_core::Device) -> candle_core::Result<Vec<Vec<f64>>> {
    let logits: Vec<Vec<f32>> = net.forward(&crate::nn::input_batch(data, idx, device)?)?.to_vec2()?;
    Ok(logits.iter().map(|l| crate::robust::oracle::softmax(&l.iter().map(|v| *v as f64).collect::<Vec<_>>())).collect())
}

/// A step curve's (radii, certified accuracies).
type Curve = (Vec<f64>, Vec<f64>);

struct CertifiedPlot;

impl Stage for CertifiedPlot {
    fn output(&self) -> &'static Kind {
        &FIGURE
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let labels = cx.args().texts("labels");
        let results = cx.inputs::<Certified>("results")?;
        let curves: Vec<(String, Curve)> = results
            .iter()
            .enumerate()
            .map(|(k, (stage, c))| {
                let name = labels.get(k).cloned().unwrap_or_else(|| format!("{stage} ({}, sigma = {})", c.method.replace('_', " "), c.sigma));
                (name, c.curve())
            })
            .collect();
        let plot = LinePlot {
            title: &super::plots::title(cx, || "Certified accuracy against the l2 radius".into()),
            x: Axis::new("l2 radius", Scaling::Linear),
            y: Axis::new("certified accuracy", Scaling::Linear),
            series: curves.iter().map(|(n, c)| Series::xy(n, &c.0, &c.1)).collect(),
        };
        Ok(Output::nothing(&FIGURE, Metrics::new(), super::plots::write_figure(cx, "certified", plot.render())?))
    }
}
