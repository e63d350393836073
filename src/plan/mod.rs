//! The stage graph: petgraph DAG over the checked nodes, its topological order, and its
//! text and Graphviz renderings.

use crate::check::{Checked, Node};
use crate::diag::{Code, Diag};
use petgraph::algo::toposort;
use petgraph::graph::{DiGraph, NodeIndex};

#[derive(Debug, Clone)]
pub struct Plan {
    pub checked: Checked,
    pub graph: DiGraph<usize, ()>,
    /// Node indices in an order where every stage comes after what it uses.
    pub order: Vec<usize>,
}

impl Plan {
    pub fn nodes(&self) -> &[Node] {
        &self.checked.nodes
    }

    /// Some stage reads the data directory: the pipeline needs real datasets to run.
    pub fn reads_data_dir(&self) -> bool {
        self.nodes().iter().any(|n| n.builtin.stage.as_ref().is_some_and(|s| s.reads_data_dir()))
    }

    pub fn find(&self, name: &str) -> Option<usize> {
        self.checked.nodes.iter().position(|n| n.name == name)
    }

    /// What `--only NAME` runs: the stage and everything it needs. A name that is not a
    /// stage but the `let` of several (`t2` for `t2.attack1`, ...) is told which they are.
    pub fn select(&self, name: &str) -> Result<Vec<usize>, Diag> {
        if let Some(i) = self.find(name) {
            return Ok(self.closure(i));
        }
        let nodes = self.nodes();
        let prefix = format!("{name}.");
        let under: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).filter(|n| n.starts_with(&prefix)).collect();
        let d = Diag::new(Code::E3002, format!("no stage named `{name}`"));
        if !under.is_empty() {
            let listed: Vec<String> = under.iter().map(|n| format!("`{n}`")).collect();
            return Err(d
                .hint(format!("`{name}` holds the stages {}; `--only` takes one of them", listed.join(", ")))
                .hint(format!("e.g. `--only {}`", under[0])));
        }
        let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        Err(d
            .maybe_hint(crate::diag::did_you_mean(name, names.iter().copied()).map(|s| format!("did you mean `{s}`?")))
            .hint(format!("stages: {}", names.join(", "))))
    }

    /// `node` and everything it needs, in execution order.
    pub fn closure(&self, node: usize) -> Vec<usize> {
        let mut keep = vec![false; self.checked.nodes.len()];
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            if !keep[n] {
                keep[n] = true;
                stack.extend(self.checked.nodes[n].deps.iter().copied());
            }
        }
        self.order.iter().copied().filter(|&n| keep[n]).collect()
    }
}

pub fn plan(checked: Checked) -> Result<Plan, Vec<Diag>> {
    let mut graph = DiGraph::new();
    let idx: Vec<NodeIndex> = (0..checked.nodes.len()).map(|i| graph.add_node(i)).collect();
    for (i, n) in checked.nodes.iter().enumerate() {
        for &d in &n.deps {
            graph.add_edge(idx[d], idx[i], ());
        }
    }
    match toposort(&graph, None) {
        Ok(_) => {
            // Elaboration creates every node after the nodes it uses, so creation order
            // (which follows the source) is already topological and reads naturally.
            let order = (0..checked.nodes.len()).collect();
            Ok(Plan { checked, graph, order })
        }
        Err(cycle) => {
            let n = &checked.nodes[graph[cycle.node_id()]];
            Err(vec![
                Diag::new(Code::E3001, format!("stage `{}` is part of a cycle", n.name))
                    .at(n.span, "this stage depends on itself")
                    .hint("a stage can only use results of stages that do not need it"),
            ])
        }
    }
}

/// One line per stage in execution order: `name = builtin <- deps`.
pub fn render_text(plan: &Plan) -> String {
    let nodes = plan.nodes();
    let width = nodes.iter().map(|n| n.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for &i in &plan.order {
        let n = &nodes[i];
        let deps: Vec<&str> = n.deps.iter().map(|&d| nodes[d].name.as_str()).collect();
        let arrow = if deps.is_empty() { String::new() } else { format!(" <- {}", deps.join(", ")) };
        out.push_str(&format!("{:width$} = {}{arrow}\n", n.name, n.builtin.name));
    }
    out
}

pub fn render_dot(plan: &Plan) -> String {
    let nodes = plan.nodes();
    let mut out = String::from("digraph pipeline {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
    for &i in &plan.order {
        let n = &nodes[i];
        out.push_str(&format!("  \"{}\" [label=\"{}\\n{}\"];\n", n.name, n.name, n.builtin.name));
    }
    for &i in &plan.order {
        for &d in &nodes[i].deps {
            out.push_str(&format!("  \"{}\" -> \"{}\";\n", nodes[d].name, nodes[i].name));
        }
    }
    out.push_str("}\n");
    out
}
