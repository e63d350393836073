//! A `certify` result: each image's certified class (or abstention) and l2 radius, saved as
//! `certified.csv` and read back from it, so that `certified_plot` can overlay methods.

use crate::diag::Diag;
use crate::lang::{Artifact, ArtifactRef, Kind, Role, Saved, StageDir};
use crate::yaml;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub static CERTIFIED: Kind = Kind {
    name: "certified",
    describe: "a `certify` result",
    supers: &[],
    role: Role::Result { load: Some(load), metrics: &[] },
};

#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub index: usize,
    pub label: usize,
    /// None: the certifier abstained.
    pub class: Option<usize>,
    pub radius: f64,
    /// Randomized smoothing's lower bound on p_A, or the averaged model's top-two gap.
    pub score: f64,
    pub evaluations: usize,
}

impl Row {
    /// Certified correct at radius r: the right class, certified at least that far.
    pub fn certified_at(&self, r: f64) -> bool {
        self.class == Some(self.label) && self.radius >= r
    }
}

pub struct Certified {
    /// `randomized_smoothing` or `gaussian_average`.
    pub method: String,
    pub sigma: f64,
    pub rows: Vec<Row>,
}

impl Certified {
    /// The fraction of images certified correct at each radius: a step curve from r = 0.
    pub fn curve(&self) -> (Vec<f64>, Vec<f64>) {
        let n = self.rows.len().max(1) as f64;
        let mut radii: Vec<f64> = self.rows.iter().filter(|r| r.class == Some(r.label)).map(|r| r.radius).collect();
        radii.sort_by(f64::total_cmp);
        let (mut xs, mut ys) = (vec![0.0], vec![radii.len() as f64 / n]);
        for (k, r) in radii.iter().enumerate() {
            let left = (radii.len() - k) as f64 / n;
            xs.extend([*r, *r]);
            ys.extend([left, left - 1.0 / n]);
        }
        (xs, ys)
    }

    pub fn accuracy_at(&self, r: f64) -> f64 {
        self.rows.iter().filter(|row| row.certified_at(r)).count() as f64 / self.rows.len().max(1) as f64
    }
}

#[derive(Serialize, Deserialize)]
struct Facts {
    method: String,
    sigma: f64,
}

const TABLE: &str = "certified.csv";

impl Artifact for Certified {
    fn kind(&self) -> &'static Kind {
        &CERTIFIED
    }

    fn save(&self, dir: &StageDir) -> Result<Saved, Diag> {
        let mut csv = String::from("index,label,class,radius,score,evaluations\n");
        for r in &self.rows {
            let class = r.class.map_or(String::new(), |c| c.to_string());
            csv.push_str(&format!("{},{},{class},{},{},{}\n", r.index, r.label, r.radius, r.score, r.evaluations));
        }
        let table = dir.write(TABLE, csv.as_bytes())?;
        let facts = Facts { method: self.method.clone(), sigma: self.sigma };
        Ok(Saved { files: vec![table], facts: yaml::to_value(&facts) })
    }
}

fn load(_kind: &'static Kind, dir: &StageDir, facts: &yaml::Value) -> Result<ArtifactRef, Diag> {
    let facts: Facts = yaml::from_value(facts.clone()).map_err(|e| dir.bad("stage.yaml", e))?;
    let text = dir.read_text(TABLE)?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let bad = |why: &str| dir.bad(TABLE, format!("line {}: {why}", n + 1));
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 6 {
            return Err(bad("not 6 columns"));
        }
        let count = |s: &str| s.parse::<usize>().map_err(|_| bad("not a count"));
        let number = |s: &str| s.parse::<f64>().map_err(|_| bad("not a number"));
        rows.push(Row {
            index: count(f[0])?,
            label: count(f[1])?,
            class: if f[2].is_empty() { None } else { Some(count(f[2])?) },
            radius: number(f[3])?,
            score: number(f[4])?,
            evaluations: count(f[5])?,
        });
    }
    Ok(Arc::new(Certified { method: facts.method, sigma: facts.sigma, rows }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_steps_down_at_each_correct_radius_and_ignores_wrong_or_abstained_images() {
        let row = |label, class, radius| Row { index: 0, label, class, radius, score: 0.0, evaluations: 1 };
        let c = Certified {
            method: "gaussian_average".into(),
            sigma: 0.5,
            rows: vec![row(1, Some(1), 0.3), row(2, Some(2), 0.8), row(3, Some(4), 2.0), row(0, None, 0.0)],
        };
        let (xs, ys) = c.curve();
        assert_eq!(xs, vec![0.0, 0.3, 0.3, 0.8, 0.8]);
        assert_eq!(ys, vec![0.5, 0.5, 0.25, 0.25, 0.0]);
        assert_eq!(c.accuracy_at(0.0), 0.5);
        assert_eq!(c.accuracy_at(0.5), 0.25);
        assert_eq!(c.accuracy_at(0.8), 0.25);
        assert_eq!(c.accuracy_at(0.81), 0.0);
    }
}
