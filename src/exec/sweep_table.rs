//! A reported sweep: one row per member (its swept values, its seed, its stage and the
//! numbers reported of it) and a figure of each number against the swept parameter,
//! written to `sweeps/<label>.png` (and `.svg`) in the run folder.

use super::report::StageReport;
use crate::check::ReportItem;
use crate::lang::{Metrics, Node, Params, SEED_AXIS, show_number};
use crate::yaml::{self, Mapping, Value};
use flowline_numerics::plots::{Axis, Scaling, SweepLine, SweepPanel, SweepPlot};
use std::path::Path;

/// At most this many numbers are drawn, one panel each.
const MAX_PANELS: usize = 9;

pub struct SweepTable {
    pub label: String,
    /// The field reported (`fit.final_loss`), if one is.
    pub field: Option<String>,
    pub axes: Vec<String>,
    /// The numbers reported of every member, in the order first seen.
    pub columns: Vec<String>,
    pub rows: Vec<SweepRow>,
    /// The figure's PNG in the run folder, when one was drawn.
    pub figure: Option<String>,
}

pub struct SweepRow {
    pub stage: String,
    pub params: Params,
    /// The seed the member's stages drew from.
    pub seed: u64,
    pub values: Metrics,
    /// Why the row has no numbers (`failed`, `skipped`, `not run`).
    pub missing: Option<String>,
}

impl SweepTable {
    pub fn new(item: &ReportItem, nodes: &[Node], stages: &[StageReport], seed: u64) -> Self {
        let mut columns: Vec<String> = Vec::new();
        let mut rows = Vec::new();
        for (params, node) in &item.members {
            let n = &nodes[*node];
            let stage = stages.iter().find(|s| s.name == n.name);
            let mut values = Metrics::new();
            let missing = match stage {
                Some(s) if s.has_result() => {
                    match &item.field {
                        Some(f) => {
                            if let Some(v) = s.metrics.get(f) {
                                values.insert(f.clone(), *v);
                            }
                        }
                        None => values.extend(s.metrics.iter().map(|(k, v)| (k.clone(), *v))),
                    }
                    None
                }
                Some(s) => Some(s.status.to_string()),
                None => Some("not run".to_string()),
            };
            for k in values.keys() {
                if !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
            rows.push(SweepRow { stage: n.name.clone(), params: params.clone(), seed: n.seed(seed), values, missing });
        }
        SweepTable {
            label: item.label.clone(),
            field: item.field.clone(),
            axes: item.axes.clone(),
            columns,
            rows,
            figure: None,
        }
    }

    /// The table as report.yaml holds it under `reported`.
    pub fn to_value(&self) -> Value {
        let mut m = Mapping::new();
        m.insert(yaml::string("sweep"), Value::Sequence(self.axes.iter().map(|a| yaml::string(a.clone())).collect()));
        let rows = self
            .rows
            .iter()
            .map(|r| {
                let mut row = Mapping::new();
                for (axis, v) in &r.params.0 {
                    let value = match v.number {
                        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => yaml::int(x as i64),
                        Some(x) => yaml::float(x),
                        None => yaml::string(v.shown.clone()),
                    };
                    row.insert(yaml::string(axis.clone()), value);
                }
                if r.params.get(SEED_AXIS).is_none() {
                    row.insert(yaml::string(SEED_AXIS), yaml::int(r.seed as i64));
                }
                row.insert(yaml::string("stage"), yaml::string(r.stage.clone()));
                for (k, v) in &r.values {
                    row.insert(yaml::string(k.clone()), yaml::float(*v));
                }
                if let Some(why) = &r.missing {
                    row.insert(yaml::string("result"), yaml::string(format!("none ({why})")));
                }
                Value::Mapping(row)
            })
            .collect();
        m.insert(yaml::string("rows"), Value::Sequence(rows));
        if let Some(f) = &self.figure {
            m.insert(yaml::string("figure"), yaml::string(f.clone()));
        }
        Value::Mapping(m)
    }

    /// `fit[lam=0.1,seed=1].metric -> value` (for `report fit` or `report fit.metric`):
    /// what the console prints and `flowline test` compares.
    pub fn flatten(&self, out: &mut Metrics) {
        let name = self.stage_label();
        for r in &self.rows {
            let head = format!("{name}{}", r.params.bracket_or_empty());
            for (k, v) in &r.values {
                out.insert(format!("{head}.{k}"), *v);
            }
        }
    }

    /// The sweep's name without the reported field: `fit` for `fit.final_loss`.
    fn stage_label(&self) -> &str {
        match &self.field {
            Some(f) => self.label.strip_suffix(&format!(".{f}")).unwrap_or(&self.label),
            None => &self.label,
        }
    }

    /// Draws the figure into `out/sweeps/` and records its path; a sweep with nothing to
    /// draw (no numbers, one value per axis) gets none.
    pub fn draw(&mut self, out: &Path) -> Result<(), String> {
        let Some(plot) = self.plot() else { return Ok(()) };
        let (x, xs, panels) = plot;
        let figure = SweepPlot { x, xs, panels: &panels, columns: 3 }.render()?;
        let stem = format!("sweeps/{}", self.label);
        let dir = out.join("sweeps");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        crate::lang::write_atomic(&out.join(format!("{stem}.png")), &figure.png).map_err(|d| d.message)?;
        crate::lang::write_atomic(&out.join(format!("{stem}.svg")), figure.svg.as_bytes()).map_err(|d| d.message)?;
        self.figure = Some(format!("{stem}.png"));
        Ok(())
    }

    /// The x axis (the first swept parameter other than the seed with several values), its
    /// positions, and one panel per number: a line per setting of the other parameters,
    /// the seeds' values together at each position.
    fn plot(&self) -> Option<(Axis, Vec<f64>, Vec<SweepPanel>)> {
        let values_of = |axis: &str| {
            let mut seen: Vec<&crate::lang::Swept> = Vec::new();
            for r in &self.rows {
                if let Some(v) = r.params.get(axis)
                    && !seen.contains(&v)
                {
                    seen.push(v);
                }
            }
            seen
        };
        let x_axis = self.axes.iter().find(|a| a.as_str() != SEED_AXIS && values_of(a).len() > 1)?;
        let positions = values_of(x_axis);
        let (axis, xs) = x_scale(x_axis, &positions);
        // A line per setting of the other swept parameters, seeds pooled.
        let others: Vec<&String> = self.axes.iter().filter(|a| *a != x_axis && a.as_str() != SEED_AXIS).collect();
        let line_of = |p: &Params| {
            let parts: Vec<String> =
                others.iter().filter_map(|a| p.get(a).map(|v| format!("{a}={}", v.shown))).collect();
            parts.join(", ")
        };
        let mut names: Vec<String> = Vec::new();
        for r in &self.rows {
            let n = line_of(&r.params);
            if !names.contains(&n) {
                names.push(n);
            }
        }
        let stage = self.stage_label();
        let panels: Vec<SweepPanel> = self
            .columns
            .iter()
            .take(MAX_PANELS)
            .map(|metric| SweepPanel {
                metric: format!("{stage}.{metric}"),
                lines: names
                    .iter()
                    .map(|name| SweepLine {
                        name: if name.is_empty() { metric.clone() } else { name.clone() },
                        values: positions
                            .iter()
                            .map(|pos| {
                                self.rows
                                    .iter()
                                    .filter(|r| r.params.get(x_axis) == Some(pos) && &line_of(&r.params) == name)
                                    .filter_map(|r| r.values.get(metric).copied())
                                    .collect()
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        (!panels.is_empty()).then_some((axis, xs, panels))
    }
}

/// How the swept values are laid out: on a log axis when all are positive and span a
/// decade or more, linearly when numbers that do not, and as named positions otherwise
/// (names, or a grid such as 0, 0.001, 0.01 that neither scale shows well).
fn x_scale(axis: &str, values: &[&crate::lang::Swept]) -> (Axis, Vec<f64>) {
    let numbers: Option<Vec<f64>> = values.iter().map(|v| v.number).collect();
    if let Some(n) = numbers {
        let (lo, hi) = n.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
        if lo > 0.0 && hi / lo >= 10.0 {
            return (Axis::new(axis, Scaling::Log), n);
        }
        let spread_from_zero =
            lo == 0.0 && n.iter().filter(|v| **v > 0.0).fold(f64::INFINITY, |a, &v| a.min(v)) * 10.0 <= hi;
        if !spread_from_zero {
            return (Axis::new(axis, Scaling::Linear), n);
        }
    }
    let names = values.iter().map(|v| v.shown.clone()).collect();
    let xs = (0..values.len()).map(|i| i as f64).collect();
    (Axis::categories(axis, names), xs)
}

/// A row's cell for a number, as the console shows it.
pub fn cell(v: Option<f64>) -> String {
    v.map(show_number).unwrap_or_default()
}
