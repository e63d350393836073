//! Sweeps as the checker leaves them: a family of values, one member per combination of the
//! swept parameters, and what a stage made for one member records of it (its swept values,
//! its seed, the random stream it shares with the other members).

use super::value::CVal;
use serde::{Deserialize, Serialize};

/// A value that stands for several: what a `sweep` (or `--sweep`) makes, and what a call
/// given a family makes, mapped over its members.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Family {
    /// The swept parameters, in the order they were introduced (the first varies slowest).
    pub axes: Vec<String>,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Member {
    pub params: Params,
    pub value: CVal,
}

/// The swept values that make one member, in axis order: `lam = 0.01, seed = 1`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Params(pub Vec<(String, Swept)>);

/// One swept value, as names and tables show it, and as a number where it is one (the x of
/// a sweep's plot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Swept {
    pub shown: String,
    pub number: Option<f64>,
}

/// The axis that sets a member's seed.
pub const SEED_AXIS: &str = "seed";

impl Params {
    pub fn get(&self, axis: &str) -> Option<&Swept> {
        self.0.iter().find(|(a, _)| a == axis).map(|(_, v)| v)
    }

    /// No axis of `other` has another value here.
    pub fn agrees_with(&self, other: &Params) -> bool {
        other.0.iter().all(|(a, v)| self.get(a).is_none_or(|mine| mine == v))
    }

    /// `[lam=0.01,seed=1]`: what a member's stages add to their name.
    pub fn bracket(&self) -> String {
        let parts: Vec<String> = self.0.iter().map(|(a, v)| format!("{a}={}", v.shown)).collect();
        format!("[{}]", parts.join(","))
    }

    /// The bracket, or nothing outside a sweep.
    pub fn bracket_or_empty(&self) -> String {
        if self.0.is_empty() { String::new() } else { self.bracket() }
    }

    /// The seed a `seed` axis sets.
    pub fn seed(&self) -> Option<u64> {
        let n = self.get(SEED_AXIS)?.number?;
        (n >= 0.0 && n.fract() == 0.0).then_some(n as u64)
    }
}

/// What a stage made for a member of a sweep records: the member's swept values, and the
/// random stream it draws from. The stream is the name the stage would have without the
/// sweep, under the member's seed: members that differ in anything but the seed draw the
/// same numbers (initial weights, batches), so that their differences are the swept
/// parameter's, and a member equals the same pipeline run once with its values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberOf {
    pub params: Params,
    pub stream: String,
    /// From a `seed` axis; the pipeline's seed otherwise.
    pub seed: Option<u64>,
}

impl Family {
    /// The axes of all `members`, in the order first seen.
    pub fn axes_of(members: &[Member]) -> Vec<String> {
        let mut axes: Vec<String> = Vec::new();
        for m in members {
            for (a, _) in &m.params.0 {
                if !axes.contains(a) {
                    axes.push(a.clone());
                }
            }
        }
        axes
    }
}
