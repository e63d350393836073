//! What a stage asks of a cluster when it runs as a job of its own: CPUs, memory, GPUs, a
//! time limit and a partition. Not part of a stage's result (nor of its cache key): a stage
//! computes the same on any machine.

use super::value::{Args, VKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<i64>,
    /// As Slurm reads it: `4G`, `500M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<i64>,
    /// As Slurm reads it: minutes, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM:SS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

impl Resources {
    /// The arguments of a `resources(...)` config; those left at `none` are not asked for.
    pub fn from_args(a: &Args) -> Resources {
        let text = |n: &str| match a.get(n).map(|v| &v.kind) {
            Some(VKind::Str(s) | VKind::Sym(s)) => Some(s.clone()),
            _ => None,
        };
        Resources {
            cpus: a.int("cpus"),
            mem: text("mem"),
            gpus: a.int("gpus"),
            time: text("time"),
            partition: text("partition"),
        }
    }

    /// These, with `defaults` where these ask for nothing.
    pub fn over(&self, defaults: &Resources) -> Resources {
        Resources {
            cpus: self.cpus.or(defaults.cpus),
            mem: self.mem.clone().or_else(|| defaults.mem.clone()),
            gpus: self.gpus.or(defaults.gpus),
            time: self.time.clone().or_else(|| defaults.time.clone()),
            partition: self.partition.clone().or_else(|| defaults.partition.clone()),
        }
    }

    /// `sbatch` options asking for them.
    pub fn sbatch_options(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(c) = self.cpus {
            out.push(format!("--cpus-per-task={c}"));
        }
        if let Some(m) = &self.mem {
            out.push(format!("--mem={m}"));
        }
        if let Some(g) = self.gpus.filter(|g| *g > 0) {
            out.push(format!("--gpus={g}"));
        }
        if let Some(t) = &self.time {
            out.push(format!("--time={t}"));
        }
        if let Some(p) = &self.partition {
            out.push(format!("--partition={p}"));
        }
        out
    }
}

/// A memory size as Slurm reads it: a whole number with an optional K, M, G or T.
pub fn valid_mem(s: &str) -> bool {
    let digits = s.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    !digits.is_empty() && digits.len() + 1 >= s.len() && digits.chars().all(|c| c.is_ascii_digit())
}

/// A time limit as Slurm reads it: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`.
pub fn valid_time(s: &str) -> bool {
    let number = |p: &str| !p.is_empty() && p.len() <= 4 && p.chars().all(|c| c.is_ascii_digit());
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, s),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    days.is_none_or(number)
        && parts.iter().all(|p| number(p))
        && parts.len() <= 3
        && (days.is_some() || !rest.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_spellings_are_recognised() {
        for ok in ["4G", "500M", "1024", "2t"] {
            assert!(valid_mem(ok), "{ok}");
        }
        for bad in ["", "G", "4GB", "four", "-1G"] {
            assert!(!valid_mem(bad), "{bad}");
        }
        for ok in ["30", "30:00", "2:00:00", "1-12", "1-12:30", "1-12:30:00"] {
            assert!(valid_time(ok), "{ok}");
        }
        for bad in ["", "2h", "1:2:3:4", "a-1", ":", "1-"] {
            assert!(!valid_time(bad), "{bad}");
        }
        let own = Resources { cpus: Some(4), ..Default::default() };
        let defaults = Resources { cpus: Some(1), time: Some("10".into()), ..Default::default() };
        let merged = own.over(&defaults);
        assert_eq!(merged.sbatch_options(), ["--cpus-per-task=4", "--time=10"]);
    }
}
