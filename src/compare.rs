//! `flowline compare RUN...`: the metrics of several runs side by side, with each later run's
//! difference from and ratio to the first, as a terminal table, CSV or Markdown.

use crate::lang::show_number;
use crate::yaml::{self, Value};
use std::path::{Path, PathBuf};

/// One run's report, read back.
pub struct Run {
    /// The column's name: the run folder's name, or its path where names repeat.
    pub label: String,
    pub seed: Option<u64>,
    pub profile: Option<String>,
    pub commit: Option<String>,
    /// `stage.metric -> value`, in the report's order.
    pub metrics: Vec<(String, f64)>,
}

/// The runs' metrics aligned by name: one row per `stage.metric` any run has.
pub struct Table {
    pub runs: Vec<Run>,
    pub rows: Vec<(String, Vec<Option<f64>>)>,
}

/// A run folder (or its report.yaml) read back; a clear message when it is not a run.
pub fn read_run(path: &Path) -> Result<Run, String> {
    let file = if path.is_dir() { path.join("report.yaml") } else { path.to_path_buf() };
    let text = std::fs::read_to_string(&file).map_err(|e| {
        format!("{}: {e} (a run folder holds the report.yaml that `flowline run` writes)", file.display())
    })?;
    let v: Value = yaml::from_str(&text).map_err(|e| format!("{}: not a report: {e}", file.display()))?;
    let stages = v.get("stages").and_then(Value::as_mapping).ok_or_else(|| format!("{}: no stages", file.display()))?;
    let mut metrics = Vec::new();
    for (name, stage) in stages {
        let (Some(name), Some(m)) = (name.as_str(), stage.get("metrics").and_then(Value::as_mapping)) else { continue };
        for (k, val) in m {
            if let (Some(k), Some(x)) = (k.as_str(), val.as_f64()) {
                metrics.push((format!("{name}.{k}"), x));
            }
        }
    }
    let dir = if path.is_dir() { path.to_path_buf() } else { path.parent().map(Path::to_path_buf).unwrap_or_default() };
    let text_at = |keys: &[&str]| {
        let mut cur = &v;
        for k in keys {
            cur = cur.get(*k)?;
        }
        cur.as_str().map(str::to_string)
    };
    Ok(Run {
        label: dir.file_name().map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned()),
        seed: v.get("seed").and_then(Value::as_u64),
        profile: text_at(&["profile"]),
        commit: text_at(&["run", "git", "commit"]).map(|c| c.chars().take(10).collect()),
        metrics,
    })
}

/// Reads the runs and aligns their metrics; with `changed`, only rows whose values differ.
pub fn compare(paths: &[PathBuf], changed: bool) -> Result<Table, String> {
    if paths.len() < 2 {
        return Err("compare takes two or more run folders".into());
    }
    let mut runs: Vec<Run> = paths.iter().map(|p| read_run(p)).collect::<Result<_, _>>()?;
    let labels: Vec<String> = runs.iter().map(|r| r.label.clone()).collect();
    for (run, path) in runs.iter_mut().zip(paths) {
        if labels.iter().filter(|l| **l == run.label).count() > 1 {
            run.label = path.display().to_string();
        }
    }
    let mut names: Vec<String> = Vec::new();
    for r in &runs {
        for (k, _) in &r.metrics {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let rows = names
        .into_iter()
        .map(|k| {
            let vals = runs.iter().map(|r| r.metrics.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)).collect();
            (k, vals)
        })
        .filter(|(_, vals): &(String, Vec<Option<f64>>)| !changed || vals.iter().any(|v| v != &vals[0]))
        .collect();
    Ok(Table { runs, rows })
}

impl Table {
    /// Header and cells: metric, each run, then for each later run its difference from and
    /// ratio to the first.
    fn cells(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let first = &self.runs[0].label;
        let mut header = vec!["metric".to_string()];
        header.extend(self.runs.iter().map(|r| r.label.clone()));
        for r in &self.runs[1..] {
            header.push(format!("{} - {first}", r.label));
            header.push(format!("{} / {first}", r.label));
        }
        let rows = self
            .rows
            .iter()
            .map(|(k, vals)| {
                let mut row = vec![k.clone()];
                row.extend(vals.iter().map(|v| v.map_or("-".into(), show_number)));
                for v in &vals[1..] {
                    match (vals[0], *v) {
                        (Some(a), Some(b)) => {
                            row.push(show_number(b - a));
                            row.push(if a != 0.0 { format!("{:.4}x", b / a) } else { "-".into() });
                        }
                        _ => row.extend(["-".to_string(), "-".to_string()]),
                    }
                }
                row
            })
            .collect();
        (header, rows)
    }

    /// Lines naming each run: seed, profile, commit.
    pub fn provenance(&self) -> Vec<String> {
        self.runs
            .iter()
            .map(|r| {
                let seed = r.seed.map_or("-".into(), |s| s.to_string());
                let profile = r.profile.as_deref().unwrap_or("default");
                let commit = r.commit.as_deref().unwrap_or("-");
                format!("{}: seed {seed}, profile {profile}, commit {commit}", r.label)
            })
            .collect()
    }

    /// Aligned columns for the terminal.
    pub fn text(&self) -> String {
        let (header, rows) = self.cells();
        let widths: Vec<usize> = (0..header.len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).chain([header[c].chars().count()]).max().unwrap_or(0))
            .collect();
        let line = |cells: &[String]| {
            let padded: Vec<String> = cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (s, w))| if c == 0 { format!("{s:<w$}") } else { format!("{s:>w$}") })
                .collect();
            padded.join("  ").trim_end().to_string()
        };
        let mut out = self.provenance().join("\n") + "\n\n";
        out += &line(&header);
        out.push('\n');
        for r in &rows {
            out += &line(r);
            out.push('\n');
        }
        out
    }

    pub fn csv(&self) -> String {
        let (header, rows) = self.cells();
        let line = |r: Vec<String>| r.iter().map(|s| crate::csv::field(s)).collect::<Vec<_>>().join(",") + "\n";
        std::iter::once(header).chain(rows).map(line).collect()
    }

    pub fn markdown(&self) -> String {
        let (header, rows) = self.cells();
        let line =
            |r: &[String]| format!("| {} |\n", r.iter().map(|s| s.replace('|', "\\|")).collect::<Vec<_>>().join(" | "));
        let mut out: String = self.provenance().iter().map(|p| format!("- {p}\n")).collect();
        out.push('\n');
        out += &line(&header);
        out += &format!("|{}\n", "---|".repeat(header.len()));
        for r in &rows {
            out += &line(r);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_dir(root: &Path, name: &str, seed: u64, acc: f64, extra: bool) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let more = if extra { "      only_here: 3.0\n" } else { "" };
        let text = format!(
            "pipeline: p.flow\nseed: {seed}\nprofile: null\nrun:\n  git:\n    commit: abcdef0123456789\nstages:\n  \
             score:\n    metrics:\n      accuracy: {acc}\n      loss: 0.5\n{more}  fit:\n    metrics: {{}}\n"
        );
        std::fs::write(dir.join("report.yaml"), text).unwrap();
        dir
    }

    #[test]
    fn metrics_align_with_differences_and_ratios() {
        let tmp = tempfile::tempdir().unwrap();
        let a = run_dir(tmp.path(), "a", 1, 0.9, false);
        let b = run_dir(tmp.path(), "b", 2, 0.99, true);
        let t = compare(&[a.clone(), b.clone()], false).unwrap();
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.rows[0], ("score.accuracy".to_string(), vec![Some(0.9), Some(0.99)]));
        assert_eq!(t.rows[2], ("score.only_here".to_string(), vec![None, Some(3.0)]));
        let csv = t.csv();
        assert_eq!(csv.lines().next().unwrap(), "metric,a,b,b - a,b / a");
        assert_eq!(csv.lines().nth(1).unwrap(), "score.accuracy,0.9,0.99,0.09,1.1000x");
        assert_eq!(csv.lines().nth(3).unwrap(), "score.only_here,-,3,-,-");
        let md = t.markdown();
        assert!(md.contains("| score.loss | 0.5 | 0.5 | 0 | 1.0000x |"), "{md}");
        assert!(md.contains("- a: seed 1, profile default, commit abcdef0123"), "{md}");
        assert!(t.text().contains("score.accuracy"));
        let changed = compare(&[a, b], true).unwrap();
        assert_eq!(
            changed.rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
            ["score.accuracy", "score.only_here"]
        );
    }

    #[test]
    fn a_folder_without_a_report_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let a = run_dir(tmp.path(), "a", 1, 0.9, false);
        let err = compare(&[a.clone(), tmp.path().join("nowhere")], false).err().unwrap();
        assert!(err.contains("nowhere") && err.contains("report.yaml"), "{err}");
        assert!(compare(&[a], false).err().unwrap().contains("two or more"));
    }
}
