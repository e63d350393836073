//! The stage graph: the checked stages as a petgraph DAG, an execution order computed from
//! it, the selection `--only` makes, cache keys, and text and Graphviz renderings. A plan is
//! plain data: it can be written out and read back by another executor (a cluster job),
//! with the registry to give its built-ins their behaviour.

mod keys;
mod render;

pub use keys::{Keyed, NUMERICS, keyed, keys};
pub use render::{render_dot, render_text};

use crate::check::{Checked, Node};
use crate::diag::{Code, Diag};
use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub checked: Checked,
    /// Node indices in an order where every stage comes after what it uses: among the
    /// stages ready at each point, the one created first (the source order).
    pub order: Vec<usize>,
}

impl Plan {
    pub fn nodes(&self) -> &[Node] {
        &self.checked.nodes
    }

    /// Some stage reads the data directory: the pipeline needs real datasets to run.
    pub fn reads_data_dir(&self) -> bool {
        self.checked.reads_data_dir
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
        // A sweep's name: every member and what they need.
        let members: Vec<usize> =
            (0..nodes.len()).filter(|&i| nodes[i].member.as_ref().is_some_and(|m| m.stream == name)).collect();
        if !members.is_empty() {
            let mut keep = vec![false; nodes.len()];
            for &m in &members {
                for i in self.closure(m) {
                    keep[i] = true;
                }
            }
            return Ok(self.order.iter().copied().filter(|&i| keep[i]).collect());
        }
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

/// The graph of the checked stages: an edge from each stage to each stage that uses it.
pub fn graph(nodes: &[Node]) -> Result<DiGraph<usize, ()>, Diag> {
    let mut graph = DiGraph::new();
    let idx: Vec<NodeIndex> = (0..nodes.len()).map(|i| graph.add_node(i)).collect();
    for (i, n) in nodes.iter().enumerate() {
        for &d in &n.deps {
            let from = idx.get(d).ok_or_else(|| {
                Diag::new(Code::E3001, format!("stage `{}` uses stage {d}, which the plan does not hold", n.name))
            })?;
            graph.add_edge(*from, idx[i], ());
        }
    }
    Ok(graph)
}

/// Kahn's algorithm, taking the lowest ready index first: for nodes the checker made (each
/// after what it uses) this is their creation order, which follows the source.
fn order(graph: &DiGraph<usize, ()>) -> Result<Vec<usize>, usize> {
    let mut waiting: Vec<usize> =
        graph.node_indices().map(|n| graph.neighbors_directed(n, Direction::Incoming).count()).collect();
    let mut ready: BinaryHeap<Reverse<usize>> =
        waiting.iter().enumerate().filter(|(_, w)| **w == 0).map(|(i, _)| Reverse(i)).collect();
    let mut out = Vec::with_capacity(waiting.len());
    while let Some(Reverse(i)) = ready.pop() {
        out.push(graph[NodeIndex::new(i)]);
        for next in graph.neighbors_directed(NodeIndex::new(i), Direction::Outgoing) {
            let w = &mut waiting[next.index()];
            *w -= 1;
            if *w == 0 {
                ready.push(Reverse(next.index()));
            }
        }
    }
    if out.len() == waiting.len() {
        Ok(out)
    } else {
        // A stage still waiting is on a cycle (possible only in a plan read back from a file).
        Err(waiting.iter().position(|w| *w > 0).unwrap_or(0))
    }
}

pub fn plan(checked: Checked) -> Result<Plan, Vec<Diag>> {
    let graph = graph(&checked.nodes).map_err(|d| vec![d])?;
    match order(&graph) {
        Ok(order) => Ok(Plan { checked, order }),
        Err(i) => {
            let n = &checked.nodes[i];
            Err(vec![
                Diag::new(Code::E3001, format!("stage `{}` is part of a cycle", n.name))
                    .at(n.span, "this stage depends on itself")
                    .hint("a stage can only use results of stages that do not need it"),
            ])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::{Args, Meta};

    fn node(name: &str, deps: &[usize]) -> Node {
        Node {
            name: name.into(),
            builtin: "toy2d".into(),
            args: Args::default(),
            span: Default::default(),
            meta: Meta::default(),
            deps: deps.to_vec(),
            member: None,
            resources: None,
        }
    }

    fn checked(nodes: Vec<Node>) -> Checked {
        Checked {
            nodes,
            reports: vec![],
            seed: 0,
            profile: None,
            profiles: vec![],
            sets: vec![],
            reads_data_dir: false,
            resources: None,
            warnings: vec![],
        }
    }

    /// Nodes in any order (a plan read back from elsewhere) are run after what they use,
    /// and a cycle is E3001 naming a stage on it.
    #[test]
    fn the_order_follows_dependencies_and_cycles_are_found() {
        let p = plan(checked(vec![node("fit", &[2]), node("score", &[0, 2]), node("data", &[])])).unwrap();
        assert_eq!(p.order, vec![2, 0, 1]);
        let p = plan(checked(vec![node("a", &[]), node("b", &[0]), node("c", &[])])).unwrap();
        assert_eq!(p.order, vec![0, 1, 2], "creation order where it is topological");
        let e = plan(checked(vec![node("a", &[1]), node("b", &[0]), node("c", &[])])).unwrap_err();
        assert_eq!(e[0].code, Code::E3001);
        assert!(e[0].message.contains("`a`"), "{}", e[0].message);
    }

    /// A checked pipeline goes through text and back unchanged: what a sweep or a cluster
    /// job needs.
    #[test]
    fn a_plan_round_trips_through_yaml() {
        let mut sources = crate::diag::SourceMap::new();
        let src = "use std.models\nseed 3\nlet data = toy2d(\"moons\", n: 50)\n\
                   let fit = train(mlp(hidden: 4), data, optimizer: sgd(lr: 8/255), iters: 2)\n\
                   let s = evaluate(fit, data)\nreport s, fit.final_loss\n";
        let id = sources.add("t.flow", None, src.to_string());
        let reg = crate::stages::registry();
        let p = plan(crate::check::check(&reg, &mut sources, id, &Default::default()).unwrap()).unwrap();
        let text = crate::yaml::to_string(&p).unwrap();
        let back: Plan = crate::yaml::from_str(&text).unwrap();
        assert_eq!(crate::yaml::to_string(&back).unwrap(), text);
        assert_eq!(keys(&back, &reg, std::path::Path::new("d")), keys(&p, &reg, std::path::Path::new("d")));
        assert_eq!(back.order, p.order);
    }
}
