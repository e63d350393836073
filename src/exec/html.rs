//! `report.html` beside report.yaml: one self-contained page (no network, figures inlined as
//! SVG) with the run's provenance, the stage graph coloured by status, the reported values,
//! and each stage's parameters, metrics, warnings, failure and figures.

use super::dag_svg::{STATUS_COLORS, StageBox, draw, fill};
use super::report::{Report, StageReport};
use super::sweep_table::{SweepTable, cell};
use crate::diag::Diag;
use crate::plan::Plan;
use crate::yaml::{self, Value};
use std::fmt::Write;
use std::path::Path;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#111}\
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}\
.status{display:inline-block;padding:.05em .5em;border-radius:.8em;font-size:.8em;border:1px solid #999}\
figure{margin:1em 0}figure svg{max-width:100%;height:auto}figcaption{font-size:.85em;color:#555}\
.dagwrap{overflow-x:auto}.warn{color:#8a5300}.error{color:#a00}pre{background:#f7f7f7;padding:.5em;overflow-x:auto}\
section.stage{margin-top:1.5em}.legend span{margin-right:1em}";

/// `<`, `>`, `&` and quotes as entities.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes `report.html` into the run folder `out`.
pub fn write(plan: &Plan, report: &Report, out: &Path) -> Result<(), Diag> {
    crate::lang::write_atomic(&out.join("report.html"), page(plan, report, out).as_bytes())
}

/// The page. Figures are read from the run folder `out`.
pub fn page(plan: &Plan, report: &Report, out: &Path) -> String {
    let mut h = String::new();
    let title = format!("flowline: {}", report.pipeline);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title><style>{STYLE}</style></head>\n<body>\n\
         <h1>{t}</h1>\n",
        t = escape(&title)
    );
    h += &provenance(report);
    h += "<h2>Stages</h2>\n<div class=\"legend\">";
    for (status, color) in STATUS_COLORS {
        let _ = write!(h, "<span><span class=\"status\" style=\"background:{color}\">{status}</span></span>");
    }
    h += "</div>\n<div class=\"dagwrap\">";
    h += &dag(plan, report);
    h += "</div>\n";
    let single: Vec<&(String, Value)> =
        report.reported.iter().filter(|(l, _)| !report.sweeps.iter().any(|t| &t.label == l)).collect();
    if !single.is_empty() {
        h += "<h2>Reported</h2>\n<table>\n<tr><th>name</th><th>value</th></tr>\n";
        for (label, v) in single {
            let _ = writeln!(h, "<tr><td>{}</td>{}</tr>", escape(label), value_cell(v));
        }
        h += "</table>\n";
    }
    for t in &report.sweeps {
        h += &sweep(t, out);
    }
    for s in &report.stages {
        h += &stage(s, out);
    }
    h + "</body></html>\n"
}

fn provenance(r: &Report) -> String {
    let p = &r.provenance;
    let mut rows: Vec<(&str, String)> = vec![
        ("command", if p.command.is_empty() { "(library call)".into() } else { p.command.join(" ") }),
        ("started", p.started.clone()),
        ("host", p.host.clone()),
        ("seed", r.seed.to_string()),
        ("profile", r.profile.clone().unwrap_or_else(|| "(none)".into())),
        ("device", r.device.clone()),
        ("flowline", env!("CARGO_PKG_VERSION").into()),
        ("candle", env!("FLOWLINE_CANDLE_VERSION").into()),
    ];
    if !p.overrides.is_empty() {
        rows.push(("overrides", p.overrides.join(", ")));
    }
    if let Some(g) = &p.git {
        rows.push(("git commit", format!("{}{}", g.commit, if g.dirty { " (with uncommitted changes)" } else { "" })));
    }
    if let Some(only) = &r.only {
        rows.push(("only", only.clone()));
    }
    let mut h = String::from("<table class=\"run\">\n");
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><th>{k}</th><td><code>{}</code></td></tr>", escape(&v));
    }
    h + "</table>\n"
}

fn dag(plan: &Plan, report: &Report) -> String {
    let nodes = plan.nodes();
    // The report's stages are in execution order; the graph's indices follow it.
    let index = |name: &str| report.stages.iter().position(|s| s.name == name);
    let boxes: Vec<StageBox> = report
        .stages
        .iter()
        .map(|s| {
            let deps = nodes
                .iter()
                .find(|n| n.name == s.name)
                .map(|n| n.deps.iter().filter_map(|&d| index(&nodes[d].name)).collect())
                .unwrap_or_default();
            StageBox { name: &s.name, builtin: &s.builtin, status: s.status, deps }
        })
        .collect();
    draw(&boxes)
}

fn value_cell(v: &Value) -> String {
    match v {
        Value::Number(n) => {
            format!("<td class=\"num\">{}</td>", n.as_f64().map_or(n.to_string(), crate::lang::show_number))
        }
        Value::String(s) => format!("<td>{}</td>", escape(s)),
        // A group of numbers (a table's or an evaluation's): a nested table.
        Value::Mapping(m) if !m.is_empty() && m.values().all(|v| v.is_number()) => {
            let mut t = String::from("<td><table>");
            for (k, v) in m {
                let k = key_text(k);
                let _ = write!(t, "<tr><td>{}</td>{}</tr>", escape(&k), value_cell(v));
            }
            t + "</table></td>"
        }
        other => {
            let text = yaml::to_string(other).unwrap_or_default();
            let text = text.trim();
            if text.contains('\n') {
                format!("<td><pre>{}</pre></td>", escape(text))
            } else {
                format!("<td><code>{}</code></td>", escape(text))
            }
        }
    }
}

fn stage(s: &StageReport, out: &Path) -> String {
    let color = fill(s.status);
    let mut h = format!(
        "<section class=\"stage\" id=\"stage-{id}\">\n<h3>{name} <span class=\"status\" style=\"background:{color}\">{status}</span></h3>\n<p><code>{builtin}</code>",
        id = escape(&s.name),
        name = escape(&s.name),
        status = escape(s.status),
        builtin = escape(&s.builtin),
    );
    if let Some(t) = s.wall_seconds {
        let _ = write!(h, " · {t:.2} s");
    }
    if let Some(note) = &s.note {
        let _ = write!(h, " · {}", escape(note));
    }
    h += "</p>\n";
    if let Some(map) = s.params.as_mapping().filter(|m| !m.is_empty()) {
        h += "<table class=\"params\"><tr><th>parameter</th><th>value</th></tr>\n";
        for (k, v) in map {
            let k = key_text(k);
            let _ = writeln!(h, "<tr><td>{}</td>{}</tr>", escape(&k), value_cell(v));
        }
        h += "</table>\n";
    }
    if !s.metrics.is_empty() {
        h += "<table class=\"metrics\"><tr><th>metric</th><th>value</th></tr>\n";
        for (k, v) in &s.metrics {
            let _ =
                writeln!(h, "<tr><td>{}</td><td class=\"num\">{}</td></tr>", escape(k), crate::lang::show_number(*v));
        }
        h += "</table>\n";
    }
    for w in &s.warnings {
        let _ = writeln!(h, "<p class=\"warn\">warning[{}]: {}</p>", w.code.as_str(), escape(&w.message));
    }
    if let Some(e) = &s.error {
        let _ = writeln!(h, "<p class=\"error\">error[{}]: {}</p>", e.code.as_str(), escape(&e.message));
    }
    for png in s.artifacts.iter().filter(|a| a.ends_with(".png")) {
        h += &inline_figure(out, png);
    }
    let others: Vec<&String> = s.artifacts.iter().filter(|a| !a.ends_with(".png") && !a.ends_with(".svg")).collect();
    if !others.is_empty() {
        h += "<p>files: ";
        h += &others.iter().map(|a| format!("<code>{}</code>", escape(a))).collect::<Vec<_>>().join(", ");
        h += "</p>\n";
    }
    h + "</section>\n"
}

/// A reported sweep: its table, one row per member, and its figure.
fn sweep(t: &SweepTable, out: &Path) -> String {
    let mut h = format!("<h2>Sweep: {}</h2>\n<table class=\"sweep\">\n<tr>", escape(&t.label));
    let seeded = t.axes.iter().any(|a| a == crate::lang::SEED_AXIS);
    for a in &t.axes {
        let _ = write!(h, "<th>{}</th>", escape(a));
    }
    if !seeded {
        h += "<th>seed</th>";
    }
    for c in &t.columns {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    h += "<th>stage</th></tr>\n";
    for r in &t.rows {
        h += "<tr>";
        for a in &t.axes {
            let shown = r.params.get(a).map(|v| v.shown.as_str()).unwrap_or("");
            let _ = write!(h, "<td>{}</td>", escape(shown));
        }
        if !seeded {
            let _ = write!(h, "<td class=\"num\">{}</td>", r.seed);
        }
        for c in &t.columns {
            let _ = write!(h, "<td class=\"num\">{}</td>", cell(r.values.get(c).copied()));
        }
        let note = r.missing.as_ref().map(|m| format!(" ({m})")).unwrap_or_default();
        let _ = writeln!(h, "<td><a href=\"#stage-{id}\">{id}</a>{}</td></tr>", escape(&note), id = escape(&r.stage));
    }
    h += "</table>\n";
    if let Some(png) = &t.figure {
        h += &inline_figure(out, png);
    }
    h
}

/// A figure's SVG (beside its PNG) inlined, with the PNG's path as its caption.
fn inline_figure(out: &Path, png: &str) -> String {
    let svg = out.join(png.trim_end_matches(".png").to_string() + ".svg");
    match std::fs::read_to_string(&svg) {
        Ok(text) => format!("<figure>{}<figcaption>{}</figcaption></figure>\n", strip_prolog(&text), escape(png)),
        Err(_) => format!("<p>figure <code>{}</code> (no SVG beside it to inline)</p>\n", escape(png)),
    }
}

/// A mapping key as text (keys are strings in flowline's reports; others as YAML).
fn key_text(k: &Value) -> String {
    k.as_str().map_or_else(|| yaml::to_string(k).unwrap_or_default().trim().to_string(), str::to_string)
}

/// An SVG document as an element to inline (without an XML declaration, if any).
fn strip_prolog(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("a<b & \"c\"'"), "a&lt;b &amp; &quot;c&quot;&#39;");
        assert_eq!(strip_prolog("<?xml version=\"1.0\"?>\n<svg x>"), "<svg x>");
    }
}
