//! The checker on small programs: folding, overrides, defs, imports.

mod common;

use flowline::CheckOptions;
use flowline::check::{Checked, VKind};
use flowline::diag::{Code, Diag, SourceMap};

fn check(src: &str, sets: &[&str]) -> Result<Checked, Vec<Diag>> {
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src);
    let opts = CheckOptions { profile: None, sets: sets.iter().map(|s| s.to_string()).collect() };
    flowline::check(&mut sources, id, &opts)
}

fn codes(r: Result<Checked, Vec<Diag>>) -> Vec<Code> {
    r.err().unwrap_or_default().iter().map(|d| d.code).collect()
}

const BASE: &str = "use std.models\nlet data = toy2d(\"moons\")\nlet model = mlp(hidden: 64)\nlet fit = train(model, data, epochs: 2)\n";

fn node<'a>(c: &'a Checked, name: &str) -> &'a flowline::check::Node {
    c.nodes.iter().find(|n| n.name == name).unwrap()
}

#[test]
fn nested_and_default_config_paths_can_be_overridden() {
    let c = check(BASE, &["fit.optimizer.lr=1e-4", "model.hidden=8", "seed=3", "data.n=10*5"]).unwrap();
    let fit = node(&c, "fit");
    let opt = fit.args.config("optimizer").unwrap();
    assert_eq!(opt.builtin.name, "adam");
    assert_eq!(opt.args.float("lr"), Some(1e-4));
    let layers = fit.args.get("model").unwrap().layers();
    let first = match &layers[0].kind {
        VKind::Config(c) => c.args.int("out"),
        _ => None,
    };
    assert_eq!(first, Some(8));
    assert_eq!(c.seed, 3);
    assert_eq!(node(&c, "data").args.int("n"), Some(50));
}

#[test]
fn arithmetic_folds_with_true_division() {
    let c = check(BASE.replace("epochs: 2", "epochs: 2, optimizer: sgd(lr: 8/255)").as_str(), &[]).unwrap();
    let lr = node(&c, "fit").args.config("optimizer").unwrap().args.float("lr").unwrap();
    assert!((lr - 8.0 / 255.0).abs() < 1e-15);
    assert_eq!(codes(check("let a = toy2d(\"moons\", n: 3 - 5)", &[])), vec![Code::E2006]);
}

#[test]
fn lets_may_come_in_any_order_and_nested_stages_get_names() {
    let src =
        "use std.models\nlet score = evaluate(train(mlp(), data), data)\nlet data = toy2d(\"moons\")\nreport score\n";
    let c = check(src, &[]).unwrap();
    let names: Vec<&str> = c.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, vec!["data", "score.trained", "score"]);
}

#[test]
fn all_errors_of_a_file_are_reported_at_once() {
    let src =
        "let a = toy2d(\"moonz\")\nlet b = toy2d(\"moons\", n: -1)\nlet c = nope\nlet d = toy2d(\"moons\" n: 1)\n";
    let mut c = codes(check(src, &[]));
    c.sort();
    assert_eq!(c, vec![Code::E0001, Code::E1001, Code::E2006, Code::E2007]);
}

#[test]
fn pathological_input_is_diagnosed_not_crashed() {
    let deep = format!("let a = {}1{}", "(".repeat(500), ")".repeat(500));
    assert_eq!(codes(check(&deep, &[])), vec![Code::E0001]);
    let chain = format!("let a = {}", vec!["1"; 200].join(" + "));
    assert!(check(&chain, &[]).is_ok());
    let long_chain = format!("let a = {}", vec!["1"; 20000].join(" + "));
    assert_eq!(codes(check(&long_chain, &[])), vec![Code::E0001]);
    assert_eq!(codes(check("let a = 9223372036854775807 + 1", &[])), vec![Code::E2011]);
    assert_eq!(codes(check("let a = 1e308 * 10.0", &[])), vec![Code::E2011]);
}

#[test]
fn defs_bind_positional_and_keyword_arguments() {
    let src = "def net(h: 4, k: 2) = linear(h) |> relu |> linear(k)\nlet data = toy2d(\"rings\")\nlet fit = train(net(16, k: 4), data)\n";
    assert!(check(src, &[]).is_ok());
    let bad = src.replace("net(16, k: 4)", "net(16, 4, 3)");
    assert_eq!(codes(check(&bad, &[])), vec![Code::E2004]);
    let wrong_classes = src.replace("k: 4", "k: 3");
    assert_eq!(codes(check(&wrong_classes, &[])), vec![Code::E4002]);
}
