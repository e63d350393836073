//! Comparing attacks: robustness curves overlaid, and a table like the papers'. Both read
//! `attack` results.

use super::attack_outcome::Status;
use super::attacked::{ATTACKED, Attacked};
use crate::diag::Diag;
use crate::lang::{Builtin, Dflt, FIGURE, Kind, Metrics, Output, Param, RunCtx, Stage, TABLE, Ty};
use crate::plots::{Axis, LinePlot, Scaling, Series};

const NORMS: [&str; 4] = ["l0", "l1", "l2", "linf"];

pub fn builtins() -> Vec<Builtin> {
    let attacks =
        || Param::new("attacks", Ty::list(Ty::kind(&ATTACKED)), Dflt::Required, "`attack` results to compare");
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
    rows: Vec<(Status, [f64; 4])>,
}

impl Rows {
    fn attacked(&self) -> usize {
        self.rows.iter().filter(|r| r.0 != Status::Misclassified).count()
    }
    fn broken(&self, col: usize) -> Vec<f64> {
        let mut v: Vec<f64> = self.rows.iter().filter(|r| r.0 == Status::Broken).map(|r| r.1[col]).collect();
        v.sort_by(f64::total_cmp);
        v
    }
    /// Every attacked image's distance, a failure counting as infinite.
    fn attacked_distances(&self, col: usize) -> Vec<f64> {
        self.rows
            .iter()
            .filter(|r| r.0 != Status::Misclassified)
            .map(|r| if r.0 == Status::Broken { r.1[col] } else { f64::INFINITY })
            .collect()
    }
    /// The fraction of attacked images broken within each distance: a step curve from 0 that
    /// ends at the success rate, not at 1, when some images were not broken.
    fn curve(&self, col: usize) -> (Vec<f64>, Vec<f64>) {
        let d = self.broken(col);
        let n = self.attacked().max(1) as f64;
        let mut xs = vec![0.0];
        let mut ys = vec![0.0];
        for (k, v) in d.iter().enumerate() {
            xs.extend([*v, *v]);
            ys.extend([k as f64 / n, (k + 1) as f64 / n]);
        }
        (xs, ys)
    }
}

fn read_attacks(cx: &RunCtx) -> Result<Vec<Rows>, Diag> {
    let labels = cx.args().texts("labels");
    let attacks = cx.inputs::<Attacked>("attacks")?;
    Ok(attacks
        .into_iter()
        .enumerate()
        .map(|(k, (stage, a))| Rows {
            name: labels.get(k).cloned().unwrap_or(stage),
            rows: a.outcomes.iter().map(|o| (o.status, o.dist)).collect(),
        })
        .collect())
}

struct RobustnessPlot;

impl Stage for RobustnessPlot {
    fn output(&self) -> &'static Kind {
        &FIGURE
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let norm = cx.args().text("norm").unwrap_or("l2").to_string();
        let col = NORMS.iter().position(|n| *n == norm).unwrap_or(2);
        let attacks = read_attacks(cx)?;
        let curves: Vec<(Vec<f64>, Vec<f64>)> = attacks.iter().map(|a| a.curve(col)).collect();
        let plot = LinePlot {
            title: &super::plots::title(cx, || format!("Images broken within a given {norm} distance")),
            x: Axis::new(format!("{norm} distance"), Scaling::Linear),
            y: Axis::new("fraction broken", Scaling::Linear),
            series: attacks.iter().zip(&curves).map(|(a, c)| Series::xy(&a.name, &c.0, &c.1)).collect(),
        };
        Ok(Output::nothing(&FIGURE, Metrics::new(), super::plots::write_figure(cx, "robustness", plot.render())?))
    }
}

struct AttackTable;

impl Stage for AttackTable {
    fn output(&self) -> &'static Kind {
        &TABLE
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let attacks = read_attacks(cx)?;
        // Medians and means over every attacked image, a failure counting as infinite;
        // `mean_success` is the mean over the broken images only.
        let mut csv = String::from("attack,attacked,success_rate");
        let mut md = String::from("| attack | success |");
        for n in NORMS {
            csv.push_str(&format!(",median_{n},mean_{n},mean_success_{n}"));
            md.push_str(&format!(" median {n} | mean {n} | mean {n} (broken) |"));
        }
        csv.push('\n');
        md.push_str(&format!("\n|---|---|{}\n", "---|---|---|".repeat(NORMS.len())));
        let mut metrics = Metrics::new();
        for a in &attacks {
            let attacked = a.attacked();
            let rate = a.broken(0).len() as f64 / attacked.max(1) as f64;
            csv.push_str(&format!("{},{attacked},{rate}", a.name));
            md.push_str(&format!("| {} | {:.1}% |", a.name, 100.0 * rate));
            for (col, norm) in NORMS.iter().enumerate() {
                let all = a.attacked_distances(col);
                let median = super::attack_outcome::median(&mut all.clone());
                let mean = super::attack_outcome::mean(&all);
                let mean_success = super::attack_outcome::mean(&a.broken(col));
                csv.push_str(&format!(",{median},{mean},{mean_success}"));
                md.push_str(&format!(" {} | {} | {} |", cell(median), cell(mean), cell(mean_success)));
                metrics.insert(format!("{}.median_{norm}", a.name), median);
                metrics.insert(format!("{}.mean_{norm}", a.name), mean);
                metrics.insert(format!("{}.mean_success_{norm}", a.name), mean_success);
            }
            csv.push('\n');
            md.push('\n');
            metrics.insert(format!("{}.success_rate", a.name), rate);
        }
        let files = vec![cx.write_file("table.csv", csv.as_bytes())?, cx.write_file("table.md", md.as_bytes())?];
        Ok(Output::nothing(&TABLE, metrics, files))
    }
}

/// A table cell: four decimals, or the symbol for a failed image's infinite distance.
pub(super) fn cell(v: f64) -> String {
    if v.is_infinite() {
        "∞".into()
    } else if v.is_nan() {
        "–".into()
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Rows {
        let r = |s: &str, d: f64| (Status::parse(s).unwrap(), [d, d, d, d]);
        Rows {
            name: "a".into(),
            rows: vec![r("broken", 0.5), r("failed", f64::INFINITY), r("broken", 0.2), r("misclassified", 0.0)],
        }
    }

    #[test]
    fn the_table_counts_failures_as_infinite_and_the_curve_ends_at_the_success_rate() {
        let a = rows();
        let mut all = a.attacked_distances(2);
        assert_eq!(all.len(), 3);
        assert_eq!(super::super::attack_outcome::median(&mut all), 0.5);
        assert_eq!(super::super::attack_outcome::mean(&a.attacked_distances(2)), f64::INFINITY);
        assert_eq!(super::super::attack_outcome::mean(&a.broken(2)), 0.35);
        let (xs, ys) = a.curve(2);
        assert_eq!(xs, vec![0.0, 0.2, 0.2, 0.5, 0.5]);
        assert_eq!(*ys.last().unwrap(), 2.0 / 3.0);
    }
}
