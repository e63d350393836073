//! Dataset stages.

use super::dataset::{DATASET, dataset_output};
use crate::data::functions::uniform_box;
use crate::data::{TOY2D, toy2d};
use crate::diag::{Code, Diag};
use crate::lang::{Builtin, Dflt, Kind, Meta, Output, Param, RunCtx, Stage, StaticCall, Ty};
use crate::rng::Rng;

pub fn builtins() -> Vec<Builtin> {
    vec![
    Builtin::stage(
        "toy2d",
        "One of FFJORD's eight 2-D sets from its generating formula, labelled where it has natural classes.",
        vec![
            Param::new("name", Ty::choice(&TOY2D), Dflt::Required, "which set"),
            Param::new("n", Ty::Int, Dflt::Int(1000), "number of points").within(Some(1.0), Some(10_000_000.0)),
            Param::new(
                "seed",
                Ty::opt(Ty::Int),
                Dflt::None,
                "own seed instead of one derived from the global seed (e.g. a held-out set)",
            ),
            Param::new("noise", Ty::opt(Ty::Float), Dflt::None, "noise level instead of the set's default")
                .within(Some(0.0), None),
        ],
        Toy2d,
    ),
    Builtin::stage(
        "uniform",
        "Unlabelled inputs drawn uniformly from the box [low, high]^dims (regression inputs, `regress`, `heat_smoothing`).",
        vec![
            Param::new("dims", Ty::Int, Dflt::Int(1), "input dimension").within(Some(1.0), Some(100_000.0)),
            Param::new("n", Ty::Int, Dflt::Int(1000), "number of points").within(Some(1.0), Some(10_000_000.0)),
            Param::new("low", Ty::Float, Dflt::Float(-1.0), "lower end of each coordinate"),
            Param::new("high", Ty::Float, Dflt::Float(1.0), "upper end of each coordinate"),
            Param::new("seed", Ty::opt(Ty::Int), Dflt::None, "own seed instead of one derived from the global seed"),
        ],
        Uniform,
    )]
}

struct Uniform;

impl Stage for Uniform {
    fn output(&self) -> &'static Kind {
        &DATASET
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        Meta {
            shape: Some(vec![cx.args.int("dims").unwrap_or(1) as usize]),
            classes: None,
            n: cx.args.int("n").map(|n| n as usize),
            bounds: None,
        }
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        match (cx.args.float("low"), cx.args.float("high")) {
            (Some(lo), Some(hi)) if lo >= hi => vec![
                Diag::new(Code::E2003, format!("`low` ({lo}) must be below `high` ({hi})"))
                    .at(cx.args.get("high").map_or(cx.span, |v| v.span), "an empty box")
                    .hint("write the box as `low: -1.0, high: 1.0`"),
            ],
            _ => vec![],
        }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let a = cx.args();
        let (dims, n) = (a.int("dims").unwrap_or(1) as usize, a.int("n").unwrap_or(1000) as usize);
        let (low, high) = (a.float("low").unwrap_or(-1.0), a.float("high").unwrap_or(1.0));
        let mut rng = own_or_stage_rng(cx, "uniform");
        let mut out = dataset_output(uniform_box(n, dims, low, high, &mut rng));
        // The dataset kind declares `classes`: unlabelled inputs have none.
        out.metrics.insert("classes".into(), 0.0);
        Ok(out)
    }
}

struct Toy2d;

fn classes_of(name: &str) -> Option<usize> {
    match name {
        "moons" | "circles" | "2spirals" => Some(2),
        "rings" => Some(4),
        "pinwheel" => Some(5),
        "8gaussians" | "checkerboard" => Some(8),
        _ => None,
    }
}

impl Stage for Toy2d {
    fn output(&self) -> &'static Kind {
        &DATASET
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        // The sets are unbounded point clouds: they declare no input box.
        Meta {
            shape: Some(vec![2]),
            classes: cx.args.text("name").and_then(classes_of),
            n: cx.args.int("n").map(|n| n as usize),
            bounds: None,
        }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let a = cx.args();
        let name = a.text("name").unwrap_or("moons").to_string();
        let n = a.int("n").unwrap_or(1000) as usize;
        let noise = a.float("noise");
        let mut rng = own_or_stage_rng(cx, "toy2d");
        let d = toy2d(&name, n, noise, &mut rng).map_err(|e| cx.error(Code::R1002, e))?;
        Ok(dataset_output(d))
    }
}

/// A dataset's own seed where it gives one (a held-out set), else the stage's stream.
fn own_or_stage_rng(cx: &mut RunCtx, label: &str) -> Rng {
    match cx.args().int("seed") {
        Some(s) => Rng::derive(s as u64, label),
        None => cx.take_rng(),
    }
}
