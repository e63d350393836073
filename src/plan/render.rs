//! The plan as text (`flowline graph`) and as Graphviz.

use super::Plan;

/// One line per stage in execution order: `name = builtin <- deps`.
pub fn render_text(plan: &Plan) -> String {
    let nodes = plan.nodes();
    let width = nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for &i in &plan.order {
        let n = &nodes[i];
        let deps: Vec<&str> = n.deps.iter().map(|&d| nodes[d].name.as_str()).collect();
        let arrow = if deps.is_empty() { String::new() } else { format!(" <- {}", deps.join(", ")) };
        out.push_str(&format!("{:width$} = {}{arrow}\n", n.name, n.builtin));
    }
    out
}

pub fn render_dot(plan: &Plan) -> String {
    let nodes = plan.nodes();
    let mut out = String::from("digraph pipeline {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
    for &i in &plan.order {
        let n = &nodes[i];
        out.push_str(&format!("  \"{}\" [label=\"{}\\n{}\"];\n", n.name, n.name, n.builtin));
    }
    for &i in &plan.order {
        for &d in &nodes[i].deps {
            out.push_str(&format!("  \"{}\" -> \"{}\";\n", nodes[d].name, nodes[i].name));
        }
    }
    out.push_str("}\n");
    out
}
