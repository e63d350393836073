//! The bottom of the language: types and the kinds families register, values, signatures of
//! built-ins and their registry, the `Stage` trait, artifacts, and the runtime interface a
//! stage sees. check, plan, exec and stages all build on it; it depends on no part of the
//! compiler (only on diagnostics, the YAML module and the numerical library).

mod artifact;
mod atomic;
mod context;
mod family;
mod kind;
mod node;
mod number;
mod progress;
mod registry;
mod resources;
mod signature;
mod stage;
mod types;
mod value;

pub use artifact::{
    Artifact, ArtifactRef, Loader, Metrics, NoData, Output, Saved, StageDir, downcast, load_nothing, save_tensors,
};
pub use atomic::{write as write_atomic, write_with as write_atomic_with};
pub use context::{RunCtx, RunEnv, Upstream};
pub use family::{Family, Member, MemberOf, Params, SEED_AXIS, Swept};
pub use kind::{FIGURE, Kind, METRICS, Role, TABLE};
pub use node::Node;
pub use number::show_number;
pub use progress::Progress;
pub use registry::Registry;
pub use resources::{Resources, valid_mem, valid_time};
pub use signature::{Body, Builtin, Dflt, Lowered, Meta, Param, Range, StaticCall, show_default};
pub use stage::{Stage, field_type, fields, metric_names};
pub use types::Ty;
pub use value::{Args, CVal, Config, Name, StageRef, VKind};
