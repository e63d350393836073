//! `attack_report`: per norm, which attack found the smallest perturbation on how many
//! images, with each attack's median, model calls and time, and for every ensemble what
//! each of its members won inside it.

use super::attack_outcome::{Status, median, norm_column};
use super::attack_reports::cell;
use super::attacked::{ATTACKED, Attacked, Cost, metric_key};
use crate::diag::Diag;
use crate::lang::{Builtin, Dflt, Kind, Metrics, Output, Param, RunCtx, Stage, TABLE, Ty};
use crate::robust::norms::Norm;
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn builtins() -> Vec<Builtin> {
    vec![Builtin::stage(
        "attack_report",
        "Per norm: each attack's median distance, the images on which it found the smallest perturbation (wins), \
         its model calls per image and its time; ensembles broken down by member. As Markdown and CSV.",
        vec![
            Param::new("attacks", Ty::list(Ty::kind(&ATTACKED)), Dflt::Required, "`attack` results to compare"),
            Param::new("labels", Ty::list(Ty::Str), Dflt::Syms(&[]), "names (default: stage names)"),
        ],
        AttackReport,
    )]
}

/// Two distances closer than this (relative) tie: both attacks win the image.
const TIE: f64 = 1e-9;

struct Entry {
    name: String,
    attack: Arc<Attacked>,
}

impl Entry {
    fn ensemble(&self) -> bool {
        !self.attack.members.is_empty()
    }
    /// Distance per attacked image index in `norm`, infinite where the attack failed.
    fn distances(&self, norm: Norm) -> BTreeMap<usize, f64> {
        let col = norm_column(norm);
        self.attack
            .outcomes
            .iter()
            .filter(|o| o.status != Status::Misclassified)
            .map(|o| (o.index, if o.status == Status::Broken { o.dist[col] } else { f64::INFINITY }))
            .collect()
    }
}

/// Wins per entry among the single attacks (ensembles win wherever their best member does,
/// so they are left out); ties count for every attack tied. Also the images no attack broke.
fn wins(group: &[&Entry], norm: Norm) -> (Vec<Option<usize>>, usize) {
    let dists: Vec<BTreeMap<usize, f64>> = group.iter().map(|e| e.distances(norm)).collect();
    let mut images: Vec<usize> = dists.iter().flat_map(|d| d.keys().copied()).collect();
    images.sort_unstable();
    images.dedup();
    let mut won: Vec<Option<usize>> = group.iter().map(|e| (!e.ensemble()).then_some(0)).collect();
    let mut unbroken = 0;
    for i in images {
        let of = |k: usize| dists[k].get(&i).copied().unwrap_or(f64::INFINITY);
        let singles: Vec<usize> = (0..group.len()).filter(|&k| !group[k].ensemble()).collect();
        let best = singles.iter().map(|&k| of(k)).fold(f64::INFINITY, f64::min);
        if !best.is_finite() {
            unbroken += 1;
            continue;
        }
        for &k in &singles {
            if of(k) <= best * (1.0 + TIE) {
                won[k] = won[k].map(|w| w + 1);
            }
        }
    }
    (won, unbroken)
}

struct AttackReport;

impl Stage for AttackReport {
    fn output(&self) -> &'static Kind {
        &TABLE
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let labels = cx.args().texts("labels");
        let entries: Vec<Entry> = cx
            .inputs::<Attacked>("attacks")?
            .into_iter()
            .enumerate()
            .map(|(k, (stage, attack))| Entry { name: labels.get(k).cloned().unwrap_or(stage), attack })
            .collect();
        let mut md = String::from("# Attacks by norm\n");
        let mut csv = String::from("norm,attack,attacked,success_rate,median,wins,calls_per_image,gradients_per_image,forwards_per_image,seconds\n");
        let mut metrics = Metrics::new();
        for norm in Norm::ALL {
            let group: Vec<&Entry> = entries.iter().filter(|e| e.attack.norm == norm).collect();
            if group.is_empty() {
                continue;
            }
            let n = norm.name();
            let (won, unbroken) = wins(&group, norm);
            md.push_str(&format!(
                "\n## {n}\n\nMedians count a failure as an infinite distance. Wins: images on which the attack's {n} \
                 distance is the smallest of the single attacks here (ties count for each; ensembles are left out).\n\n\
                 | attack | success | median {n} | wins | calls / image | gradients / image | seconds |\n|---|---|---|---|---|---|---|\n"
            ));
            let mut best: Option<(f64, &str)> = None;
            for (e, w) in group.iter().zip(&won) {
                let mut d: Vec<f64> = e.distances(norm).into_values().collect();
                let attacked = d.len();
                let broken = d.iter().filter(|v| v.is_finite()).count();
                let med = median(&mut d);
                let rate = broken as f64 / attacked.max(1) as f64;
                let c: &Cost = &e.attack.cost;
                if med.is_finite() && best.is_none_or(|(b, _)| med < b) {
                    best = Some((med, &e.name));
                }
                let wins = w.map_or("–".to_string(), |w| w.to_string());
                md.push_str(&format!(
                    "| {} | {:.1}% | {} | {wins} | {:.0} | {:.0} | {:.1} |\n",
                    e.name,
                    100.0 * rate,
                    cell(med),
                    c.calls_per_image(),
                    c.gradients_per_image,
                    c.seconds
                ));
                csv.push_str(&format!(
                    "{n},{},{attacked},{rate},{med},{},{},{},{},{}\n",
                    e.name,
                    w.map_or(String::new(), |w| w.to_string()),
                    c.calls_per_image(),
                    c.gradients_per_image,
                    c.forwards_per_image,
                    c.seconds
                ));
                let key = format!("{n}.{}", metric_key(&e.name));
                metrics.insert(format!("{key}.median"), med);
                metrics.insert(format!("{key}.success_rate"), rate);
                if let Some(w) = w {
                    metrics.insert(format!("{key}.wins"), *w as f64);
                }
                c.insert_into(&mut metrics, &format!("{key}."));
            }
            if unbroken > 0 {
                md.push_str(&format!("\n{unbroken} images no single attack broke.\n"));
            }
            if let Some((m, who)) = best {
                md.push_str(&format!("\nSmallest median {n}: {} ({who}).\n", cell(m)));
                metrics.insert(format!("{n}.best_median"), m);
            }
            for e in group.iter().filter(|e| e.ensemble()) {
                md.push_str(&format!(
                    "\n### Inside {}\n\n| member | broken | wins | calls / image | seconds |\n|---|---|---|---|---|\n",
                    e.name
                ));
                for m in &e.attack.members {
                    md.push_str(&format!(
                        "| {} | {} | {} | {:.0} | {:.1} |\n",
                        m.label,
                        m.broken.unwrap_or(0),
                        m.wins.unwrap_or(0),
                        m.calls_per_image(),
                        m.seconds
                    ));
                }
            }
        }
        let files = vec![cx.write_file("report.md", md.as_bytes())?, cx.write_file("report.csv", csv.as_bytes())?];
        Ok(Output::nothing(&TABLE, metrics, files))
    }
}

#[cfg(test)]
mod tests {
    use super::super::attack_outcome::Outcome;
    use super::*;

    fn attacked(norm: Norm, dists: &[Option<f64>], members: usize) -> Arc<Attacked> {
        let outcomes = dists
            .iter()
            .enumerate()
            .map(|(index, d)| Outcome {
                index,
                label: 0,
                status: if d.is_some() { Status::Broken } else { Status::Failed },
                adv_label: None,
                dist: [d.unwrap_or(f64::INFINITY); 4],
                input: None,
                clean: vec![],
            })
            .collect();
        let member = Cost { label: "m".into(), wins: Some(1), broken: Some(1), ..Cost::default() };
        Arc::new(Attacked { norm, shape: vec![1], outcomes, cost: Cost::default(), members: vec![member; members] })
    }

    /// Image 0: a and b tie; image 1: b; image 2: nobody; the ensemble is not counted.
    #[test]
    fn wins_count_ties_for_each_and_leave_out_ensembles_and_unbroken_images() {
        let a = Entry { name: "a".into(), attack: attacked(Norm::L2, &[Some(1.0), Some(2.0), None], 0) };
        let b = Entry { name: "b".into(), attack: attacked(Norm::L2, &[Some(1.0), Some(1.5), None], 0) };
        let e = Entry { name: "e".into(), attack: attacked(Norm::L2, &[Some(0.5), Some(0.5), None], 2) };
        let (won, unbroken) = wins(&[&a, &b, &e], Norm::L2);
        assert_eq!(won, vec![Some(1), Some(2), None]);
        assert_eq!(unbroken, 1);
    }
}
