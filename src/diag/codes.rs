//! The stable diagnostic codes. E0 syntax, E1 names/imports, E2 types/arguments, E3 graph,
//! E4 shapes, R1 runtime I/O and data, R2 numerics; W warnings. A code never changes meaning.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// Unexpected or missing token.
    E0001,
    /// A line that starts no statement.
    E0002,
    /// A string without its closing quote.
    E0003,
    /// A number that does not fit.
    E0004,
    /// Unknown name.
    E1001,
    /// Name defined twice.
    E1002,
    /// Module not found.
    E1003,
    /// Import cycle.
    E1004,
    /// Statement not allowed in an imported module.
    E1005,
    /// Unknown profile.
    E1006,
    /// Recursive `def`.
    E1007,
    /// `seed` given twice.
    E1008,
    /// Unknown argument.
    E2001,
    /// Missing required argument.
    E2002,
    /// Argument given twice.
    E2003,
    /// Too many positional arguments.
    E2004,
    /// Type mismatch.
    E2005,
    /// Value out of range.
    E2006,
    /// Unknown choice for an enumerated argument.
    E2007,
    /// Unknown field of a stage result or config.
    E2008,
    /// Unknown override path (`--set`, profile).
    E2009,
    /// Malformed `--set`.
    E2010,
    /// Bad arithmetic (non-numbers, division by zero).
    E2011,
    /// Calling something that is not callable.
    E2012,
    /// Reporting something that is not a stage result.
    E2013,
    /// Arguments that exclude each other.
    E2014,
    /// A sweep that cannot be expanded: values that are not a list of constants, a value
    /// given twice, sweeps that share no member, a sweep where one value is needed.
    E2015,
    /// Cycle between stages.
    E3001,
    /// Unknown stage for `--only`.
    E3002,
    /// Layer input width mismatch.
    E4001,
    /// Model output does not match the data.
    E4002,
    /// Pooling whose kernel differs from its stride (no backward in candle).
    E4003,
    /// A file could not be written (output folder, artifact, checkpoint, report).
    R1001,
    /// A file or value the run reads is malformed (data, artifact, weights, manifest).
    R1002,
    /// Device not available.
    R1003,
    /// A file the run reads is missing or cannot be opened (dataset, checkpoint, weights).
    R1004,
    /// The output folder is in use by another run.
    R1005,
    /// A computation failed inside the tensor library (or an inconsistency the checker
    /// should have caught: a bug to report).
    R1006,
    /// The cluster scheduler refused, lost or cancelled a stage's job (`--executor slurm`).
    R1007,
    /// Loss or gradient became NaN/Inf.
    R2001,
    /// ODE solve hit `max_steps`.
    R2002,
    /// ODE step size fell below `min_step` (or below floating-point resolution).
    R2003,
    /// The ODE state became NaN or infinite.
    R2004,
    /// An argument asks for more than the data holds and is clamped (a warning).
    W2001,
    /// A Monte-Carlo estimate a reported number rests on is imprecise (a warning).
    W2002,
}

impl Code {
    pub const ALL: [Code; 45] = [
        Code::E0001,
        Code::E0002,
        Code::E0003,
        Code::E0004,
        Code::E1001,
        Code::E1002,
        Code::E1003,
        Code::E1004,
        Code::E1005,
        Code::E1006,
        Code::E1007,
        Code::E1008,
        Code::E2001,
        Code::E2002,
        Code::E2003,
        Code::E2004,
        Code::E2005,
        Code::E2006,
        Code::E2007,
        Code::E2008,
        Code::E2009,
        Code::E2010,
        Code::E2011,
        Code::E2012,
        Code::E2013,
        Code::E2014,
        Code::E2015,
        Code::E3001,
        Code::E3002,
        Code::E4001,
        Code::E4002,
        Code::E4003,
        Code::R1001,
        Code::R1002,
        Code::R1003,
        Code::R1004,
        Code::R1005,
        Code::R1006,
        Code::R1007,
        Code::R2001,
        Code::R2002,
        Code::R2003,
        Code::R2004,
        Code::W2001,
        Code::W2002,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Code::E0001 => "E0001",
            Code::E0002 => "E0002",
            Code::E0003 => "E0003",
            Code::E0004 => "E0004",
            Code::E1001 => "E1001",
            Code::E1002 => "E1002",
            Code::E1003 => "E1003",
            Code::E1004 => "E1004",
            Code::E1005 => "E1005",
            Code::E1006 => "E1006",
            Code::E1007 => "E1007",
            Code::E1008 => "E1008",
            Code::E2001 => "E2001",
            Code::E2002 => "E2002",
            Code::E2003 => "E2003",
            Code::E2004 => "E2004",
            Code::E2005 => "E2005",
            Code::E2006 => "E2006",
            Code::E2007 => "E2007",
            Code::E2008 => "E2008",
            Code::E2009 => "E2009",
            Code::E2010 => "E2010",
            Code::E2011 => "E2011",
            Code::E2012 => "E2012",
            Code::E2013 => "E2013",
            Code::E2014 => "E2014",
            Code::E2015 => "E2015",
            Code::E3001 => "E3001",
            Code::E3002 => "E3002",
            Code::E4001 => "E4001",
            Code::E4002 => "E4002",
            Code::E4003 => "E4003",
            Code::R1001 => "R1001",
            Code::R1002 => "R1002",
            Code::R1003 => "R1003",
            Code::R1004 => "R1004",
            Code::R1005 => "R1005",
            Code::R1006 => "R1006",
            Code::R1007 => "R1007",
            Code::R2001 => "R2001",
            Code::R2002 => "R2002",
            Code::R2003 => "R2003",
            Code::R2004 => "R2004",
            Code::W2001 => "W2001",
            Code::W2002 => "W2002",
        }
    }

    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// The hint shown for a runtime failure that carries none of its own.
    pub fn default_hint(self) -> Option<&'static str> {
        match self {
            Code::R1001 => Some("check that the output folder (`--out`) is writable and the disk is not full"),
            Code::R1002 => Some(
                "the data or artifact is damaged or not in the expected format; `--force` rebuilds a run's artifacts",
            ),
            Code::R1003 => Some("use `--device cpu`"),
            Code::R1004 => Some("check the path; relative data paths are read from the data directory (`--data-dir`)"),
            Code::R1005 => Some("wait for the other run to finish, or give this one another `--out`"),
            Code::R1006 => Some(
                "where the model and the data disagree (data whose shape is known only at run time, such as `idx`), fix the model; otherwise please report it with the pipeline",
            ),
            Code::R2001 => Some("lower the learning rate or check the data for extreme values"),
            Code::W2002 => {
                Some("more draws or a better-trained model make the estimate precise; the message says which")
            }
            _ => None,
        }
    }

    /// Pipeline errors exit with 2, runtime failures with 1.
    pub fn is_runtime(self) -> bool {
        self.as_str().starts_with('R')
    }

    pub fn is_warning(self) -> bool {
        self.as_str().starts_with('W')
    }
}
