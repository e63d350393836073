//! A stage family written outside the crate, against the public `lang` interface only: a
//! config kind with its lowering, a result kind with its artifact and loader, and two stages.
//! Added to the standard families, it is checked, type-checked, run and cached like any
//! built-in: nothing in check, plan or exec knows of it.

mod common;

use common::{render, run_opts};
use flowline::data::Dataset;
use flowline::diag::{Code, Diag, SourceMap};
use flowline::lang::{
    Args, Artifact, ArtifactRef, Builtin, Dflt, Kind, Metrics, Output, Param, Registry, Role, RunCtx, Saved, Stage,
    StageDir, Ty,
};
use flowline::yaml;
use std::any::TypeId;
use std::sync::Arc;

/// The numerical value the config lowers into.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Jitter {
    sigma: f64,
}

static JITTER: Kind = Kind {
    name: "jitter",
    describe: "a jitter such as `gaussian(sigma: 0.1)`",
    supers: &[],
    role: Role::Config {
        noun: "jitter",
        heading: "jitters",
        lowers_to: TypeId::of::<Jitter>,
        lowers_to_name: "Jitter",
        chains: false,
    },
};

static CENTRE: Kind = Kind {
    name: "centre",
    describe: "a centre of mass",
    supers: &[],
    role: Role::Result { load: Some(load_centre), metrics: &[] },
};

/// The mean of every feature of a dataset.
struct Centre(Vec<f64>);

impl Artifact for Centre {
    fn kind(&self) -> &'static Kind {
        &CENTRE
    }
    fn save(&self, dir: &StageDir) -> Result<Saved, Diag> {
        let text: Vec<String> = self.0.iter().map(|v| format!("{v}")).collect();
        Ok(Saved { files: vec![dir.write("centre.csv", text.join(",").as_bytes())?], facts: yaml::Value::Null })
    }
}

fn load_centre(_: &'static Kind, dir: &StageDir, _: &yaml::Value) -> Result<ArtifactRef, Diag> {
    let text = dir.read_text("centre.csv")?;
    let values: Result<Vec<f64>, _> = text.split(',').map(str::parse).collect();
    Ok(Arc::new(Centre(values.map_err(|e| dir.bad("centre.csv", e))?)))
}

/// `centre(data, jitter:)`: the mean of jittered data.
struct CentreStage;

impl Stage for CentreStage {
    fn output(&self) -> &'static Kind {
        &CENTRE
    }
    fn metrics(&self, _: &Args) -> Vec<String> {
        vec!["norm".into()]
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let data = cx.input::<Dataset>("data")?;
        let jitter: Jitter = cx.lower("jitter")?;
        let mut rng = cx.take_rng();
        let f = data.features();
        let mut mean = vec![0.0; f];
        for i in 0..data.n {
            for (m, x) in mean.iter_mut().zip(data.row(i)) {
                *m += (*x as f64 + jitter.sigma * rng.normal()) / data.n as f64;
            }
        }
        let mut metrics = Metrics::new();
        metrics.insert("norm".into(), mean.iter().map(|v| v * v).sum::<f64>().sqrt());
        Ok(Output { artifact: Arc::new(Centre(mean)), metrics, files: vec![] })
    }
}

/// `spread(centre)`: the largest coordinate of a centre, read through its artifact.
struct Spread;

impl Stage for Spread {
    fn output(&self) -> &'static Kind {
        &flowline::lang::METRICS
    }
    fn metrics(&self, _: &Args) -> Vec<String> {
        vec!["largest".into()]
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let c = cx.input::<Centre>("centre")?;
        let mut metrics = Metrics::new();
        metrics.insert("largest".into(), c.0.iter().fold(f64::NEG_INFINITY, |m, v| m.max(v.abs())));
        Ok(Output::nothing(self.output(), metrics, vec![]))
    }
}

fn family() -> Vec<Builtin> {
    let dataset = flowline::registry().kind("dataset").expect("the dataset kind");
    vec![
        Builtin::config(
            &JITTER,
            "gaussian",
            "Gaussian noise of standard deviation `sigma`.",
            vec![Param::new("sigma", Ty::Float, Dflt::Float(0.1), "standard deviation").within(Some(0.0), None)],
            |_: &Registry, a: &Args| Ok(Jitter { sigma: a.need_float("sigma")? }),
        ),
        Builtin::stage(
            "centre",
            "The mean of jittered data.",
            vec![
                Param::new("data", Ty::kind(dataset), Dflt::Required, "the data"),
                Param::new("jitter", Ty::kind(&JITTER), Dflt::Config("gaussian"), "the noise"),
            ],
            CentreStage,
        ),
        Builtin::stage(
            "spread",
            "The largest coordinate of a centre.",
            vec![Param::new("centre", Ty::kind(&CENTRE), Dflt::Required, "a `centre` result")],
            Spread,
        ),
    ]
}

fn registry() -> Registry {
    let mut families = flowline::stages::families();
    families.push(family());
    Registry::new(families)
}

#[test]
fn a_family_from_outside_checks_runs_and_caches_like_a_builtin() {
    let reg = registry();
    let src = "seed 2\nlet data = toy2d(\"moons\", n: 200)\n\
               let c = centre(data, jitter: gaussian(sigma: 0.01))\nlet s = spread(c)\nreport c.norm, s\n";
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src.to_string());
    let plan = flowline::check::check(&reg, &mut sources, id, &Default::default())
        .and_then(flowline::plan::plan)
        .unwrap_or_else(|d| panic!("{}", render(&d, &sources)));
    let tmp = tempfile::tempdir().unwrap();
    let opts = run_opts(tmp.path(), "t.flow");
    let first =
        flowline::exec::execute(&reg, &plan, &opts).unwrap_or_else(|f| panic!("{}", render(&f.diags, &sources)));
    let norm = first.stages.iter().find(|s| s.name == "c").unwrap().metrics["norm"];
    // The centre of the data the `data` stage saved, up to the jitter's 0.01 / sqrt(200).
    let d = flowline::stages::load_dataset(&tmp.path().join("data/data.safetensors"), None).unwrap();
    let mean = |j: usize| (0..d.n).map(|i| d.row(i)[j] as f64).sum::<f64>() / d.n as f64;
    assert!((norm - (mean(0).powi(2) + mean(1).powi(2)).sqrt()).abs() < 0.005, "{norm}");
    let again = flowline::exec::execute(&reg, &plan, &opts).unwrap();
    assert!(again.stages.iter().all(|s| s.status == "cached"));
    assert_eq!(again.reported, first.reported);
    assert!(flowline::help::listing(&reg).contains("jitters:\n  gaussian(sigma: 0.1)"));

    // Its kinds are checked like any other: a jitter is no dataset.
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, "let c = centre(gaussian(), gaussian())\n".to_string());
    let diags = flowline::check::check(&reg, &mut sources, id, &Default::default()).unwrap_err();
    assert_eq!(diags[0].code, Code::E2005);
    assert!(diags[0].message.contains("expects a dataset, found the jitter `gaussian`"), "{}", diags[0].message);
}
