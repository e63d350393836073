//! Comparing attacks: robustness curves overlaid, and a table like the papers'. Both read
//! the `adversarial.csv` of `attack` stages.

use super::registry::{Builtin, Dflt, Param, Stage};
use crate::check::{StageRef, Ty, VKind};
use crate::diag::{Code, Diag};
use crate::exec::{Artifact, Output, RunCtx};
use std::collections::BTreeMap;

const NORMS: [&str; 4] = ["l0", "l1", "l2", "linf"];

pub fn builtins() -> Vec<Builtin> {
    let attacks = || Param::new("attacks", Ty::list(Ty::Attacked), Dflt::Required, "`attack` results to compare");
    let labels = || Param::new("labels", Ty::list(Ty::Str), Dflt::Syms(&[]), "names (default: stage names)");
    vec![
        Builtin::stage(
            "robustness_plot",
            "Fraction of attacked images broken against the distance, one curve per attack.",
            vec![
                attacks(),
                labels(),
                Param::new("norm", Ty::choice(&NORMS), Dflt::Str("l2"), "the distance on the x axis"),
                Param::new("title", Ty::opt(Ty::Str), Dflt::None, "figure title (default: the stage name)"),
            ],
            RobustnessPlot,
        ),
        Builtin::stage(
            "attack_table",
            "Success rate and mean / median distances of several attacks in every norm, as CSV and Markdown.",
            vec![attacks(), labels()],
            AttackTable,
        ),
    ]
}

/// One attack's rows: (status, [l0, l1, l2, linf]) per image.
struct Rows {
    name: String,
    rows: Vec<(String, [f64; 4])>,
}

impl Rows {
    fn attacked(&self) -> usize {
        self.rows.iter().filter(|r| r.0 != "misclassified").count()
    }
    fn broken(&self, col: usize) -> Vec<f64> {
        let mut v: Vec<f64> = self.rows.iter().filter(|r| r.0 == "broken").map(|r| r.1[col]).collect();
        v.sort_by(f64::total_cmp);
        v
    }
}

fn read_attacks(cx: &RunCtx) -> Result<Vec<Rows>, Diag> {
    let refs: Vec<StageRef> = match cx.args().get("attacks").map(|v| &v.kind) {
        Some(VKind::List(items)) => items
            .iter()
            .filter_map(|i| match &i.kind {
                VKind::Stage(r) => Some(r.clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let labels = cx.args().texts("labels");
    let mut out = Vec::new();
    for (k, r) in refs.iter().enumerate() {
        let dir = cx.stage_dir_of(r).unwrap_or("").to_string();
        let path = cx.path(&format!("{dir}/adversarial.csv"));
        let text = std::fs::read_to_string(&path)
            .map_err(|e| cx.error(Code::R1002, format!("cannot read {}: {e}", path.display())))?;
        let rows = text
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                let num = |i: usize| f.get(i).and_then(|v| v.parse().ok()).unwrap_or(f64::INFINITY);
                (f.get(2).unwrap_or(&"").to_string(), [num(5), num(6), num(7), num(8)])
            })
            .collect();
        out.push(Rows { name: labels.get(k).cloned().unwrap_or(dir), rows });
    }
    Ok(out)
}

struct RobustnessPlot;

impl Stage for RobustnessPlot {
    fn output(&self) -> Ty {
        Ty::Figure
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let norm = cx.args().text("norm").unwrap_or("l2").to_string();
        let col = NORMS.iter().position(|n| *n == norm).unwrap_or(2);
        let attacks = read_attacks(cx)?;
        // A step curve: after the k-th smallest distance, k of the attacked images are broken.
        let curves: Vec<(Vec<f64>, Vec<f64>)> = attacks
            .iter()
            .map(|a| {
                let d = a.broken(col);
                let n = a.attacked().max(1) as f64;
                let mut xs = vec![0.0];
                let mut ys = vec![0.0];
                for (k, v) in d.iter().enumerate() {
                    xs.extend([*v, *v]);
                    ys.extend([k as f64 / n, (k + 1) as f64 / n]);
                }
                (xs, ys)
            })
            .collect();
        let series: Vec<crate::plots::Series> = attacks
            .iter()
            .zip(&curves)
            .map(|(a, c)| crate::plots::Series { name: &a.name, values: &c.1, xs: Some(&c.0) })
            .collect();
        let title = cx.args().text("title").map_or_else(|| cx.name().to_string(), str::to_string);
        let png = crate::plots::line_plot(&series, &title, &format!("{norm} distance"), "fraction broken")
            .to_png()
            .map_err(|e| cx.error(Code::R1001, e))?;
        let rel = cx.write_file("robustness.png", &png)?;
        Ok(Output { artifact: Artifact::File(rel.clone()), metrics: BTreeMap::new(), files: vec![rel] })
    }
}

struct AttackTable;

impl Stage for AttackTable {
    fn output(&self) -> Ty {
        Ty::Table
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let attacks = read_attacks(cx)?;
        let mut csv = String::from("attack,attacked,success_rate");
        let mut md = String::from("| attack | success |");
        for n in NORMS {
            csv.push_str(&format!(",median_{n},mean_{n}"));
            md.push_str(&format!(" median {n} | mean {n} |"));
        }
        csv.push('\n');
        md.push_str(&format!("\n|---|---|{}\n", "---|---|".repeat(NORMS.len())));
        let mut metrics = BTreeMap::new();
        for a in &attacks {
            let attacked = a.attacked();
            let rate = a.broken(0).len() as f64 / attacked.max(1) as f64;
            csv.push_str(&format!("{},{attacked},{rate}", a.name));
            md.push_str(&format!("| {} | {:.1}% |", a.name, 100.0 * rate));
            for (col, norm) in NORMS.iter().enumerate() {
                let d = a.broken(col);
                let median = if d.is_empty() { f64::NAN } else { d[d.len() / 2] * 0.5 + d[(d.len() - 1) / 2] * 0.5 };
                let mean = if d.is_empty() { f64::NAN } else { d.iter().sum::<f64>() / d.len() as f64 };
                csv.push_str(&format!(",{median},{mean}"));
                md.push_str(&format!(" {median:.4} | {mean:.4} |"));
                metrics.insert(format!("{}.median_{norm}", a.name), median);
                metrics.insert(format!("{}.mean_{norm}", a.name), mean);
            }
            csv.push('\n');
            md.push('\n');
            metrics.insert(format!("{}.success_rate", a.name), rate);
        }
        let files = vec![cx.write_file("table.csv", csv.as_bytes())?, cx.write_file("table.md", md.as_bytes())?];
        Ok(Output { artifact: Artifact::Metrics, metrics, files })
    }
}
