//! A `confidence` result: the stored histograms, one per score and top-k event, written as
//! histograms.yaml and read back from it.

use crate::calib::histogram::Histogram;
use crate::diag::{Code, Diag};
use crate::lang::{ArtifactRef, Kind, Role, Saved, StageDir};
use crate::yaml;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub static CONFIDENCE: Kind = Kind {
    name: "confidence",
    describe: "a `confidence` result: stored histograms of uncertainty scores",
    supers: &[],
    role: Role::Result { load: Some(load), metrics: &[] },
};

const FILE: &str = "histograms.yaml";

/// One score's histogram for one top-k event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub score: String,
    pub k: usize,
    pub histogram: Histogram,
}

pub struct Stored {
    pub entries: Vec<Entry>,
    /// MC dropout's passes, for an `mc_dropout` entry's lookups.
    pub passes: usize,
}

#[derive(Serialize, Deserialize)]
struct File {
    passes: usize,
    entries: Vec<Entry>,
}

impl crate::lang::Artifact for Stored {
    fn kind(&self) -> &'static Kind {
        &CONFIDENCE
    }
    fn save(&self, dir: &StageDir) -> Result<Saved, Diag> {
        let text = yaml::to_string(&File { passes: self.passes, entries: self.entries.clone() })
            .map_err(|e| Diag::new(Code::R1001, e.to_string()))?;
        Ok(Saved { files: vec![dir.write(FILE, text.as_bytes())?], facts: yaml::Value::Null })
    }
}

fn load(_kind: &'static Kind, dir: &StageDir, _facts: &yaml::Value) -> Result<ArtifactRef, Diag> {
    let f: File = yaml::from_str(&dir.read_text(FILE)?).map_err(|e| dir.bad(FILE, e))?;
    Ok(Arc::new(Stored { entries: f.entries, passes: f.passes }))
}
