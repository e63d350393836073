//! `resources(cpus:, mem:, gpus:, time:, partition:)`: what a stage asks of a cluster when it
//! runs as a job of its own (`run --executor slurm`), given as a stage's `resources:`
//! argument or, for every stage, as the override `resources` in a profile or `--set`.

use crate::lang::{Args, Builtin, Dflt, Kind, Param, Registry, Resources, Role, Ty};
use std::any::TypeId;

pub static RESOURCES: Kind = Kind {
    name: "resources",
    describe: "what a stage asks of a cluster",
    supers: &[],
    role: Role::Config {
        noun: "resources",
        heading: "cluster resources",
        lowers_to: TypeId::of::<Resources>,
        lowers_to_name: "Resources",
        chains: false,
    },
};

pub fn builtins() -> Vec<Builtin> {
    vec![Builtin::config(
        &RESOURCES,
        "resources",
        "What a stage asks of a cluster when it runs as a Slurm job (`--executor slurm`): as a \
         stage's `resources:` argument, or for every stage as `resources = resources(...)` in a \
         profile or `--set`. Left at `none`, the cluster's defaults apply. Not part of the cache key.",
        vec![
            Param::new("cpus", Ty::opt(Ty::Int), Dflt::None, "CPUs per task (--cpus-per-task)").within(Some(1.0), None),
            Param::new("mem", Ty::opt(Ty::Str), Dflt::None, "memory, as Slurm writes it: `4G`, `500M` (--mem)"),
            Param::new("gpus", Ty::opt(Ty::Int), Dflt::None, "GPUs (--gpus)").within(Some(0.0), None),
            Param::new(
                "time",
                Ty::opt(Ty::Str),
                Dflt::None,
                "time limit, as Slurm writes it: minutes, `HH:MM:SS`, `D-HH:MM:SS` (--time)",
            ),
            Param::new("partition", Ty::opt(Ty::Str), Dflt::None, "partition (--partition)"),
        ],
        |_: &Registry, a: &Args| Ok(Resources::from_args(a)),
    )]
}
