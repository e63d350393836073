//! `flowline test`: run pipelines and compare their reported metrics with a snapshot
//! beside each file (`NAME.snap.yaml`), within a relative tolerance.

use crate::yaml::{self, Mapping, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_RTOL: f64 = 1e-6;

#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    pub value: f64,
    /// Per-metric tolerance; the snapshot's default when absent.
    pub rtol: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub profile: Option<String>,
    pub rtol: f64,
    pub metrics: BTreeMap<String, Expected>,
}

pub fn path_for(pipeline: &Path) -> PathBuf {
    pipeline.with_extension("snap.yaml")
}

pub fn parse(text: &str) -> Result<Snapshot, String> {
    let v: Value = yaml::from_str(text)?;
    let rtol = v.get("rtol").and_then(Value::as_f64).unwrap_or(DEFAULT_RTOL);
    let profile = v.get("profile").and_then(Value::as_str).map(str::to_string);
    let mut metrics = BTreeMap::new();
    if let Some(Value::Mapping(m)) = v.get("metrics") {
        for (k, val) in m {
            let key = k.as_str().ok_or("metric names must be strings")?.to_string();
            let e = match val {
                Value::Number(n) => Expected { value: n.as_f64().unwrap_or(f64::NAN), rtol: None },
                Value::Mapping(_) => Expected {
                    value: val.get("value").and_then(Value::as_f64).ok_or(format!("`{key}` needs a `value`"))?,
                    rtol: val.get("rtol").and_then(Value::as_f64),
                },
                _ => return Err(format!("`{key}`: expected a number or {{value, rtol}}")),
            };
            metrics.insert(key, e);
        }
    }
    Ok(Snapshot { profile, rtol, metrics })
}

pub fn render(s: &Snapshot, pipeline: &str) -> Result<String, String> {
    let mut top = Mapping::new();
    top.insert(yaml::string("pipeline"), yaml::string(pipeline));
    top.insert(yaml::string("profile"), s.profile.clone().map(Value::String).unwrap_or(Value::Null));
    top.insert(yaml::string("rtol"), yaml::float(s.rtol));
    let mut m = Mapping::new();
    for (k, e) in &s.metrics {
        let v = match e.rtol {
            None => yaml::float(e.value),
            Some(r) => {
                let mut inner = Mapping::new();
                inner.insert(yaml::string("value"), yaml::float(e.value));
                inner.insert(yaml::string("rtol"), yaml::float(r));
                Value::Mapping(inner)
            }
        };
        m.insert(yaml::string(k.clone()), v);
    }
    top.insert(yaml::string("metrics"), Value::Mapping(m));
    Ok(format!(
        "# flowline test snapshot: `flowline test --accept` rewrites the values, keeping each rtol\n{}",
        yaml::to_string(&Value::Mapping(top))?
    ))
}

/// Differences between the snapshot and the current metrics, one readable line each.
pub fn compare(s: &Snapshot, current: &BTreeMap<String, f64>) -> Vec<String> {
    let mut out = Vec::new();
    for (k, e) in &s.metrics {
        match current.get(k) {
            None => out.push(format!("- {k}: {} (no longer reported)", e.value)),
            Some(&v) => {
                let tol = e.rtol.unwrap_or(s.rtol);
                let rel = rel_diff(e.value, v);
                if rel > tol {
                    out.push(format!("~ {k}: {} -> {v} (relative difference {rel:.3e} > rtol {tol:.0e})", e.value));
                }
            }
        }
    }
    for (k, v) in current {
        if !s.metrics.contains_key(k) {
            out.push(format!("+ {k}: {v} (not in the snapshot)"));
        }
    }
    out
}

fn rel_diff(a: f64, b: f64) -> f64 {
    if a == b {
        return 0.0;
    }
    if a.is_nan() || b.is_nan() {
        return f64::INFINITY;
    }
    (a - b).abs() / a.abs().max(b.abs()).max(1e-12)
}

/// The snapshot to write for `current`, keeping the tolerances of `old`.
pub fn accept(old: Option<&Snapshot>, profile: Option<String>, current: &BTreeMap<String, f64>) -> Snapshot {
    let metrics = current
        .iter()
        .map(|(k, &v)| {
            (k.clone(), Expected { value: v, rtol: old.and_then(|o| o.metrics.get(k)).and_then(|e| e.rtol) })
        })
        .collect();
    Snapshot { profile, rtol: old.map(|o| o.rtol).unwrap_or(DEFAULT_RTOL), metrics }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_decide_and_round_trip() {
        let text = "rtol: 1.0e-3\nmetrics:\n  a: 1.0\n  b: {value: 2.0, rtol: 0.5}\n";
        let s = parse(text).unwrap();
        let mut cur = BTreeMap::new();
        cur.insert("a".to_string(), 1.0005);
        cur.insert("b".to_string(), 2.9);
        assert!(compare(&s, &cur).is_empty());
        cur.insert("a".to_string(), 1.01);
        cur.insert("c".to_string(), 3.0);
        let diff = compare(&s, &cur);
        assert_eq!(diff.len(), 2, "{diff:?}");
        assert!(diff[0].starts_with("~ a") && diff[1].starts_with("+ c"));
        let again = parse(&render(&accept(Some(&s), None, &cur), "p.flow").unwrap()).unwrap();
        assert_eq!(again.metrics["b"].rtol, Some(0.5));
        assert!(compare(&again, &cur).is_empty());
    }
}
