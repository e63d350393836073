//! Figure stages: each figure as PNG (print resolution) and SVG in the stage folder.

use super::attacked::{ATTACKED, Attacked};
use super::dataset::DATASET;
use super::model::{MODEL, TRAINED, TRAINING, Trained};
use crate::data::Dataset;
use crate::diag::{Code, Diag};
use crate::lang::{Args, Builtin, Dflt, FIGURE, Kind, Metrics, Output, Param, RunCtx, Stage, StaticCall, Ty};
use crate::nn::predict_classes;
use crate::plots::{Axis, Figure, ImageGrid, LinePlot, Points, Scaling, Series};

pub fn builtins() -> Vec<Builtin> {
    vec![
        Builtin::stage(
            "scatter_plot",
            "Scatter plot of 2-D data, coloured by class.",
            vec![
                Param::new("data", Ty::kind(&DATASET), Dflt::Required, "2-D data"),
                Param::new("title", Ty::opt(Ty::Str), Dflt::None, "figure title (default: what is drawn)"),
            ],
            Scatter,
        ),
        Builtin::stage(
            "curves_plot",
            "Training curves of several `train` stages overlaid (loss or accuracy against step, moving average).",
            vec![
                Param::new("runs", Ty::list(Ty::kind(&TRAINING)), Dflt::Required, "the `train` results to compare"),
                Param::new("labels", Ty::list(Ty::Str), Dflt::Syms(&[]), "legend entries (default: stage names)"),
                Param::new("metric", Ty::choice(&["loss", "accuracy"]), Dflt::Str("loss"), "which curve"),
                Param::new("window", Ty::Int, Dflt::Int(20), "moving-average window in steps").within(Some(1.0), None),
                Param::new("title", Ty::opt(Ty::Str), Dflt::None, "figure title (default: what is drawn)"),
            ],
            Curves,
        ),
        Builtin::stage(
            "image_grid",
            "A grid of the first `count` images of a dataset with their labels.",
            vec![
                Param::new("data", Ty::kind(&DATASET), Dflt::Required, "images [channels, height, width] in [0, 1]"),
                Param::new("count", Ty::Int, Dflt::Int(64), "how many").within(Some(1.0), Some(1024.0)),
                Param::new("title", Ty::opt(Ty::Str), Dflt::None, "figure title (default: what is drawn)"),
            ],
            Grid,
        ),
        Builtin::stage(
            "misclassified",
            "A grid of examples the model gets wrong, captioned `true->predicted`; reports how many there are.",
            vec![
                Param::new("trained", Ty::kind(&MODEL), Dflt::Required, "a trained classifier"),
                Param::new("data", Ty::kind(&DATASET), Dflt::Required, "labelled images"),
                Param::new("count", Ty::Int, Dflt::Int(36), "at most how many to show").within(Some(1.0), Some(1024.0)),
                Param::new("title", Ty::opt(Ty::Str), Dflt::None, "figure title (default: what is drawn)"),
            ],
            Misclassified,
        ),
        Builtin::stage(
            "decision_plot",
            "Decision regions of a 2-D classifier with the data on top.",
            vec![
                Param::new("trained", Ty::kind(&TRAINED), Dflt::Required, "a trained 2-D classifier"),
                Param::new("data", Ty::kind(&DATASET), Dflt::Required, "2-D points to draw"),
                Param::new("grid", Ty::Int, Dflt::Int(200), "grid cells per axis").within(Some(2.0), Some(2000.0)),
                Param::new(
                    "adversarial",
                    Ty::opt(Ty::kind(&ATTACKED)),
                    Dflt::None,
                    "an `attack` of this model: its moves are drawn",
                ),
                Param::new("title", Ty::opt(Ty::Str), Dflt::None, "figure title (default: what is drawn)"),
            ],
            Decision,
        ),
    ]
}

fn require_2d(cx: &StaticCall, param: &str, stage: &str) -> Vec<Diag> {
    match (cx.meta(param).and_then(|m| m.shape), cx.args.get(param)) {
        (Some(f), Some(v)) if f != [2] => vec![
            Diag::new(Code::E4001, format!("`{stage}` draws 2-D data; these examples have shape {f:?}"))
                .at(v.span, format!("shape {f:?}")),
        ],
        _ => vec![],
    }
}

/// "400 points, 2 classes".
fn describe_points(d: &Dataset) -> String {
    match d.classes {
        Some(k) => format!("{} points, {k} classes", d.n),
        None => format!("{} points", d.n),
    }
}

fn points(d: &Dataset) -> Vec<[f32; 2]> {
    (0..d.n).map(|i| [d.row(i)[0], d.row(i)[1]]).collect()
}

/// The `title:` given, else `what` (a description of what is drawn).
pub(super) fn title(cx: &RunCtx, what: impl FnOnce() -> String) -> String {
    cx.args().text("title").map(str::to_string).unwrap_or_else(what)
}

/// Writes `<name>.png` and `<name>.svg`; their paths in the run folder.
pub(super) fn write_figure(cx: &RunCtx, name: &str, figure: Result<Figure, String>) -> Result<Vec<String>, Diag> {
    let figure = figure.map_err(|e| cx.error(Code::R1001, e))?;
    Ok(vec![
        cx.write_file(&format!("{name}.png"), &figure.png)?,
        cx.write_file(&format!("{name}.svg"), figure.svg.as_bytes())?,
    ])
}

struct Scatter;

impl Stage for Scatter {
    fn output(&self) -> &'static Kind {
        &FIGURE
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        require_2d(cx, "data", "scatter_plot")
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let d = cx.input::<Dataset>("data")?;
        if d.shape != [2] {
            return Err(
                cx.error(Code::R1002, format!("scatter_plot needs 2-D data, got examples of shape {:?}", d.shape))
            );
        }
        let title = title(cx, || describe_points(&d));
        let pts = points(&d);
        let fig = Points { title: &title, points: &pts, labels: d.y.as_deref(), names: None }.scatter();
        Ok(Output::nothing(&FIGURE, Metrics::new(), write_figure(cx, "scatter", fig)?))
    }
}

struct Decision;

impl Stage for Decision {
    fn output(&self) -> &'static Kind {
        &FIGURE
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let mut d = require_2d(cx, "data", "decision_plot");
        d.extend(require_2d(cx, "trained", "decision_plot"));
        d
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let d = cx.input::<Dataset>("data")?;
        let t = cx.input::<Trained>("trained")?;
        if d.shape != [2] || t.model.input != [2] {
            return Err(cx.error(Code::R1002, "decision_plot needs a 2-D model and 2-D data"));
        }
        let grid = cx.args().int("grid").unwrap_or(200) as usize;
        let device = cx.device.clone();
        let moves = adversarial_moves(cx)?;
        let title = title(cx, || {
            let moved = if moves.is_empty() { String::new() } else { format!(", {} adversarial moves", moves.len()) };
            format!("Decision regions: {}{moved}", describe_points(&d))
        });
        let pts = points(&d);
        let p = Points { title: &title, points: &pts, labels: d.y.as_deref(), names: None };
        let fig = p.decision(&moves, grid, |g| predict_classes(&t.model, g, &device).map_err(|e| e.to_string()));
        Ok(Output::nothing(&FIGURE, Metrics::new(), write_figure(cx, "decision", fig)?))
    }
}

/// (clean, adversarial) pairs of a 2-D `attack` given as `adversarial:`.
fn adversarial_moves(cx: &RunCtx) -> Result<Vec<crate::plots::Move>, Diag> {
    let Some(attacked) = cx.optional_input::<Attacked>("adversarial")? else { return Ok(Vec::new()) };
    if attacked.shape != [2] {
        return Err(cx.error(Code::R1002, "`adversarial:` must be an attack on 2-D data"));
    }
    Ok(attacked
        .outcomes
        .iter()
        .filter_map(|o| {
            let a = o.input.as_ref()?;
            Some(([o.clean[0], o.clean[1]], [a[0], a[1]]))
        })
        .collect())
}

fn require_images(cx: &StaticCall, param: &str, stage: &str) -> Vec<Diag> {
    match (cx.meta(param).and_then(|m| m.shape), cx.args.get(param)) {
        (Some(s), Some(v)) if s.len() != 3 || (s[0] != 1 && s[0] != 3) => vec![
            Diag::new(Code::E4001, format!("`{stage}` draws grey or colour images; these examples have shape {s:?}"))
                .at(v.span, format!("shape {s:?}"))
                .hint("image datasets such as `mnist` or `cifar10` have shape [1 or 3, height, width]"),
        ],
        _ => vec![],
    }
}

struct Grid;

impl Stage for Grid {
    fn output(&self) -> &'static Kind {
        &FIGURE
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        require_images(cx, "data", "image_grid")
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let d = cx.input::<Dataset>("data")?;
        let k = (cx.args().int("count").unwrap_or(64) as usize).min(d.n);
        let images: Vec<&[f32]> = (0..k).map(|i| d.row(i)).collect();
        let captions: Vec<String> =
            (0..k).map(|i| d.y.as_ref().map(|y| d.class_name(y[i])).unwrap_or_default()).collect();
        let title = title(cx, || format!("The first {k} of {} examples", d.n));
        let grid = ImageGrid { title: &title, images: &images, shape: &d.shape, captions: &captions, columns: None, headings: &[] };
        Ok(Output::nothing(&FIGURE, Metrics::new(), write_figure(cx, "grid", grid.render())?))
    }
}

struct Misclassified;

impl Stage for Misclassified {
    fn output(&self) -> &'static Kind {
        &FIGURE
    }
    fn metrics(&self, _args: &Args) -> Vec<String> {
        vec!["errors".into()]
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let mut d = require_images(cx, "data", "misclassified");
        d.extend(super::layers::check_model(cx, "trained", "data").0);
        d
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let d = cx.input::<Dataset>("data")?;
        let t = cx.input::<Trained>("trained")?;
        let labels = d.y.clone().ok_or_else(|| cx.error(Code::R1002, "the data has no labels"))?;
        let pred = predict_classes(&t.model, &d.x, &cx.device).map_err(|e| cx.compute_error("prediction", e))?;
        let wrong: Vec<usize> = (0..d.n).filter(|&i| pred[i] != labels[i]).collect();
        let k = (cx.args().int("count").unwrap_or(36) as usize).min(wrong.len());
        let images: Vec<&[f32]> = wrong[..k].iter().map(|&i| d.row(i)).collect();
        let captions: Vec<String> =
            wrong[..k].iter().map(|&i| format!("{}->{}", d.class_name(labels[i]), d.class_name(pred[i]))).collect();
        let title = title(cx, || format!("Misclassified (true->predicted): {} of {}", wrong.len(), d.n));
        let grid = ImageGrid { title: &title, images: &images, shape: &d.shape, captions: &captions, columns: None, headings: &[] };
        let files = write_figure(cx, "misclassified", grid.render())?;
        let mut metrics = Metrics::new();
        metrics.insert("errors".into(), wrong.len() as f64);
        Ok(Output::nothing(&FIGURE, metrics, files))
    }
}

struct Curves;

impl Stage for Curves {
    fn output(&self) -> &'static Kind {
        &FIGURE
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let accuracy = cx.args().text("metric") == Some("accuracy");
        let window = cx.args().int("window").unwrap_or(20) as usize;
        let labels = cx.args().texts("labels");
        let mut names = Vec::new();
        let mut curves = Vec::new();
        for (k, (stage, run)) in cx.inputs::<Trained>("runs")?.into_iter().enumerate() {
            let c = run.curves.as_ref().ok_or_else(|| cx.internal(&format!("`{stage}` has no training curves")))?;
            curves.push(moving_average(if accuracy { &c.accuracy } else { &c.loss }, window));
            names.push(labels.get(k).cloned().unwrap_or(stage));
        }
        let what = if accuracy { "accuracy" } else { "loss" };
        let plot = LinePlot {
            title: &title(cx, || format!("Training {what} (moving average over {window} steps)")),
            x: Axis::new("step", Scaling::Integer),
            y: Axis::new(what, Scaling::Linear),
            series: names.iter().zip(&curves).map(|(n, v)| Series::steps(n, v)).collect(),
        };
        Ok(Output::nothing(&FIGURE, Metrics::new(), write_figure(cx, "curves", plot.render())?))
    }
}

/// The mean over a window centred on each point, narrowed symmetrically near the ends: a
/// trailing window lags by half its width, and a wide one keeps the first, largest losses in
/// view long after they are gone.
pub fn moving_average(v: &[f64], window: usize) -> Vec<f64> {
    let half = window.max(1) / 2;
    let mut prefix = Vec::with_capacity(v.len() + 1);
    prefix.push(0.0);
    for x in v {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + x);
    }
    (0..v.len())
        .map(|i| {
            let h = half.min(i).min(v.len() - 1 - i);
            let (lo, hi) = (i - h, i + h + 1);
            (prefix[hi] - prefix[lo]) / (hi - lo) as f64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::moving_average;

    /// A ramp keeps its values (no lag, the ends included); a spike spreads over the window
    /// around it only; a constant stays constant.
    #[test]
    fn the_moving_average_is_centred() {
        let ramp: Vec<f64> = (0..20).map(|i| i as f64).collect();
        for (i, v) in moving_average(&ramp, 5).iter().enumerate() {
            assert!((v - i as f64).abs() < 1e-12, "{i}: {v}");
        }
        let mut spike = vec![0.0; 20];
        spike[0] = 100.0;
        let avg = moving_average(&spike, 9);
        assert_eq!(avg[0], 100.0);
        assert!(avg[5..].iter().all(|v| *v == 0.0), "{avg:?}");
        assert!(moving_average(&[3.0; 7], 50).iter().all(|v| *v == 3.0));
        assert_eq!(moving_average(&[], 5), Vec::<f64>::new());
    }
}
