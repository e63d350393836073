//! The checker on small programs: folding, overrides, defs, imports.

mod common;

use flowline::CheckOptions;
use flowline::check::{Checked, VKind};
use flowline::diag::{Code, Diag, SourceMap};

fn check(src: &str, sets: &[&str]) -> Result<Checked, Vec<Diag>> {
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src);
    let opts = CheckOptions { profile: None, sets: sets.iter().map(|s| s.to_string()).collect(), ..Default::default() };
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
    assert_eq!(opt.builtin, "adam");
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

fn messages(r: Result<Checked, Vec<Diag>>) -> Vec<String> {
    r.err()
        .unwrap_or_default()
        .iter()
        .map(|d| format!("{}: {} | {}", d.code.as_str(), d.message, d.hints.join(" / ")))
        .collect()
}

const ATTACKED: &str = "use std.models\nlet data = toy2d(\"moons\", n: 300)\n\
    let fit = train(mlp(hidden: 8, classes: 2), data, epochs: 1)\n";

/// A bare name given to a parameter with choices is that choice, even where a built-in
/// (`train`) or a `let` (`l2`) has the name.
#[test]
fn bare_names_resolve_to_the_parameters_choices_first() {
    let c = check("let test_set = mnist(split: train)\n", &[]).unwrap();
    assert_eq!(node(&c, "test_set").args.text("split"), Some("train"));
    let c = check("let test_set = mnist(split: train)\n", &["test_set.split=test"]).unwrap();
    assert_eq!(node(&c, "test_set").args.text("split"), Some("test"));
    let src = format!(
        "{ATTACKED}let l2 = toy2d(\"moons\")\nlet adv = attack(fit, data, using: logbarrier(norm: l2), bounds: none)\n"
    );
    let c = check(&src, &[]).unwrap();
    let using = node(&c, "adv").args.config("using").unwrap();
    assert_eq!(using.args.text("norm"), Some("l2"));
    let c = check(&format!("{ATTACKED}let score = evaluate(fit, data, metrics: [accuracy, loss])\n"), &[]).unwrap();
    assert_eq!(node(&c, "score").args.texts("metrics"), vec!["accuracy", "loss"]);
}

#[test]
fn seeds_must_be_non_negative_whole_numbers_with_a_message_that_says_so() {
    for (src, sets, code, words) in [
        ("seed -1\n", vec![], Code::E2006, "non-negative"),
        ("seed 1.5\n", vec![], Code::E2005, "whole number"),
        ("seed 99999999999999999999\n", vec![], Code::E2006, "too large"),
        ("seed 1\n", vec!["seed=-1"], Code::E2006, "non-negative"),
        ("seed 1\n", vec!["seed=0.5"], Code::E2005, "whole number"),
    ] {
        let r = check(src, &sets);
        let m = messages(r.clone());
        assert_eq!(codes(r), vec![code], "{src} {sets:?}: {m:?}");
        assert!(m[0].contains(words) && m[0].contains("seed 7"), "{m:?}");
    }
    assert_eq!(check("seed 0\n", &[]).unwrap().seed, 0);
    assert_eq!(check("seed -0\n", &[]).unwrap().seed, 0);
    assert_eq!(check("seed 1\n", &["seed=12"]).unwrap().seed, 12);
}

/// An integer literal beyond 64 bits is a float where a number is expected, and out of
/// range (never "write it as a float") where an integer is.
#[test]
fn an_integer_too_large_for_its_parameter_says_which_parameter() {
    let r = check("let data = toy2d(\"moons\", n: 99999999999999999999)\n", &[]);
    let m = messages(r.clone());
    assert_eq!(codes(r), vec![Code::E2006]);
    assert!(m[0].contains("`n` of `toy2d` takes an integer") && !m[0].contains("float"), "{m:?}");
    let c = check("let data = toy2d(\"moons\", noise: 99999999999999999999)\n", &[]).unwrap();
    assert_eq!(node(&c, "data").args.float("noise"), Some(1e20));
}

#[test]
fn a_name_outside_ascii_is_explained_with_an_ascii_spelling() {
    let r = check("let données = toy2d(\"moons\")\n", &[]);
    let m = messages(r.clone());
    assert_eq!(codes(r), vec![Code::E0001]);
    assert!(m[0].contains("`données` is not a valid name") && m[0].contains("`donnees`"), "{m:?}");
}

#[test]
fn a_hydra_style_set_points_to_sweep() {
    let r = check(BASE, &["fit.epochs=1,2"]);
    let m = messages(r.clone());
    assert_eq!(codes(r), vec![Code::E2010]);
    let hints = check(BASE, &["fit.epochs=1,2"]).unwrap_err().remove(0).hints.join(" ");
    assert!(m[0].contains("gives 2 values") && hints.contains("--sweep fit.epochs=1,2"), "{m:?} {hints}");
    // Commas inside brackets are one list value, not a sweep.
    let src = format!("{ATTACKED}let adv = attack(fit, data, using: logbarrier(), bounds: none)\n");
    let c = check(&src, &["adv.eps=[0.1,0.2]"]).unwrap();
    assert_eq!(node(&c, "adv").args.floats("eps"), Some(vec![0.1, 0.2]));
}

/// `check` elaborates the pipeline once per profile; a bad `--set` is still one error.
#[test]
fn a_bad_set_is_reported_once_whatever_the_number_of_profiles() {
    let src = format!("{BASE}profile a {{ fit.epochs = 1 }}\nprofile b {{ fit.epochs = 3 }}\n");
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src);
    for sets in [vec!["fit.epoch=3".to_string()], vec!["fit.epochs=".to_string()], vec!["nope".to_string()]] {
        let diags =
            flowline::check::check_all_profiles(flowline::registry(), &mut sources, id, &sets, &[]).err().unwrap();
        assert_eq!(diags.len(), 1, "{sets:?}: {diags:?}");
    }
}

#[test]
fn eps_radii_are_checked_and_named_readably() {
    let attack = |eps: &str| {
        check(
            &format!(
                "{ATTACKED}let adv = attack(fit, data, using: logbarrier(), bounds: none, eps: {eps})\nreport adv.robust_0p0314\n"
            ),
            &[],
        )
    };
    assert!(attack("[8/255]").is_ok());
    let r = attack("[-1, 8/255]");
    assert_eq!(codes(r.clone()), vec![Code::E2006], "{:?}", messages(r));
    let r = attack("[0.031372, 8/255]");
    let m = messages(r.clone());
    assert_eq!(codes(r), vec![Code::E2006]);
    assert!(m[0].contains("both reported as `robust_0p0314`"), "{m:?}");
}

/// Bounds come from the data where it declares them (images: [0, 1]); elsewhere they must
/// be given, or `bounds: none` asks for unbounded inputs (which CW and a default PGD cannot use).
#[test]
fn attack_bounds_come_from_the_data_or_must_be_given() {
    let r = check(&format!("{ATTACKED}let adv = attack(fit, data, using: pgd())\n"), &[]);
    let m = messages(r.clone());
    assert_eq!(codes(r), vec![Code::E2002], "{m:?}");
    assert!(m[0].contains("needs `bounds:`") && m[0].contains("bounds: none"), "{m:?}");
    assert!(
        check(&format!("{ATTACKED}let adv = attack(fit, data, using: pgd(eps_max: 3.0), bounds: none)\n"), &[]).is_ok()
    );
    assert!(check(&format!("{ATTACKED}let adv = attack(fit, data, using: pgd(), bounds: [-3, 3])\n"), &[]).is_ok());
    let r = check(&format!("{ATTACKED}let adv = attack(fit, data, using: pgd(), bounds: none)\n"), &[]);
    assert_eq!(codes(r), vec![Code::E2002]);
    let r = check(&format!("{ATTACKED}let adv = attack(fit, data, using: cw(), bounds: none)\n"), &[]);
    assert_eq!(codes(r), vec![Code::E2006]);
    // Images declare [0, 1]; `logit` maps them onto the real line and declares none.
    let mnist =
        "use std.models\nlet data = mnist(split: test)\nlet fit = train(flatten |> linear(10), data, epochs: 1)\n";
    assert!(check(&format!("{mnist}let adv = attack(fit, data, using: cw())\n"), &[]).is_ok());
    let src = format!("{mnist}let z = logit(data)\nlet adv = attack(fit, z, using: ddn())\n");
    assert_eq!(codes(check(&src, &[])), vec![Code::E2002]);
}

/// Arguments that ask for more than the data holds are warnings (W2001) the checker gives
/// when it knows the data's size; the pipeline still checks.
#[test]
fn counts_beyond_the_data_are_warnings_not_silent() {
    let src = format!("{ATTACKED}let adv = attack(fit, data, using: logbarrier(), bounds: none, count: 5000)\n");
    let c = check(&src, &[]).unwrap();
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert_eq!(c.warnings[0].code, Code::W2001);
    assert!(c.warnings[0].message.contains("`count: 5000`") && c.warnings[0].message.contains("300 examples"));
    let c =
        check("let d = digits(limit: 5000)\nlet f = train(flatten |> linear(10), d, batch: 4000, epochs: 1)\n", &[])
            .unwrap();
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(check(BASE, &[]).unwrap().warnings.is_empty());
}

/// `--only` with the name of a `let` that holds several stages lists them, rather than
/// suggesting a stage of similar spelling.
#[test]
fn only_on_a_let_of_several_stages_lists_them() {
    let c = check("let t1 = toy2d(\"rings\")\nlet t2 = [toy2d(\"moons\"), toy2d(\"circles\")]\n", &[]).unwrap();
    let plan = flowline::plan(c).unwrap();
    let d = plan.select("t2").unwrap_err();
    assert_eq!(d.code, Code::E3002);
    let hints = d.hints.join(" / ");
    assert!(hints.contains("`t2.toy2d1`, `t2.toy2d2`") && !hints.contains("`t1`"), "{hints}");
    assert_eq!(plan.select("t2.toy2d2").unwrap().len(), 1);
    let d = plan.select("t3").unwrap_err();
    assert!(d.hints.iter().any(|h| h.contains("did you mean")), "{:?}", d.hints);
}

/// Farkas layers are built-ins of the language (they were defined but never registered:
/// `farkas_linear` was an unknown function), and lower into their specs.
#[test]
fn farkas_layers_are_builtins() {
    let src = "let data = toy2d(\"moons\")\n\
               let fit = train(farkas_linear(8, agg: mean) |> relu |> linear(2), data, iters: 1)\n\
               let imgs = train(farkas_conv2d(4) |> relu |> flatten |> linear(10), digits(), iters: 1)\n";
    let c = check(src, &[]).unwrap();
    let layers = node(&c, "fit").args.get("model").unwrap().layers();
    let farkas = match &layers[0].kind {
        VKind::Config(c) => c.clone(),
        _ => panic!("not a config"),
    };
    assert_eq!(farkas.builtin, "farkas_linear");
    let specs: Vec<flowline::nn::LayerSpec> = flowline::registry().lower(&farkas).unwrap();
    assert!(matches!(
        specs.as_slice(),
        [flowline::nn::LayerSpec::FarkasLinear { out: 8, agg: flowline::nn::Aggregate::Mean, .. }]
    ));
}
