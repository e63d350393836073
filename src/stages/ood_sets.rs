//! Out-of-distribution test sets for image models: a dataset inverted or flipped, and
//! synthetic uniform-noise or constant images shaped like another dataset.

use super::dataset::{DATASET, dataset_output};
use crate::data::Dataset;
use crate::data::outliers::{constant_images, flip, invert, noise_images};
use crate::diag::{Code, Diag};
use crate::lang::{Builtin, Dflt, Kind, Meta, Output, Param, RunCtx, Stage, StaticCall, Ty};

pub fn builtins() -> Vec<Builtin> {
    let like = || Param::new("like", Ty::kind(&DATASET), Dflt::Required, "images whose shape the new ones take");
    let n = || Param::new("n", Ty::Int, Dflt::Int(1000), "number of images").within(Some(1.0), Some(1_000_000.0));
    vec![
        Builtin::stage(
            "invert",
            "Every pixel x of images in [0, 1] replaced by 1 - x (MNIST becomes dark digits on white); labels kept.",
            vec![Param::new("data", Ty::kind(&DATASET), Dflt::Required, "images in [0, 1]")],
            Transform(Op::Invert),
        ),
        Builtin::stage(
            "flip",
            "Images mirrored left-right (`horizontal`) or upside down (`vertical`); labels kept.",
            vec![
                Param::new("data", Ty::kind(&DATASET), Dflt::Required, "images [channels, height, width]"),
                Param::new(
                    "axis",
                    Ty::choice(&["horizontal", "vertical"]),
                    Dflt::Sym("vertical"),
                    "`horizontal` mirrors left-right, `vertical` upside down",
                ),
            ],
            Transform(Op::Flip),
        ),
        Builtin::stage(
            "noise_images",
            "Images of independent uniform 8-bit pixels, shaped like `like` (unlabelled).",
            vec![like(), n()],
            Synthetic(Op::Noise),
        ),
        Builtin::stage(
            "constant_images",
            "Images of one uniform 8-bit level each, all pixels equal, shaped like `like` (unlabelled).",
            vec![like(), n()],
            Synthetic(Op::Constant),
        ),
    ]
}

#[derive(Clone, Copy)]
enum Op {
    Invert,
    Flip,
    Noise,
    Constant,
}

struct Transform(Op);

fn images_only(cx: &StaticCall, param: &str, what: &str) -> Vec<Diag> {
    match (cx.meta(param).and_then(|m| m.shape), cx.args.get(param)) {
        (Some(s), Some(v)) if s.len() != 3 => vec![
            Diag::new(
                Code::E4001,
                format!("{what} needs images [channels, height, width], not examples of shape {s:?}"),
            )
            .at(v.span, "not images")
            .hint("give it an image dataset such as `mnist(split: test)`"),
        ],
        _ => vec![],
    }
}

impl Stage for Transform {
    fn output(&self) -> &'static Kind {
        &DATASET
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        match self.0 {
            Op::Flip => images_only(cx, "data", "flipping"),
            _ => vec![],
        }
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        cx.meta("data").unwrap_or_default()
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let d = cx.input::<Dataset>("data")?;
        let out = match self.0 {
            Op::Flip => flip(&d, cx.args().text("axis") != Some("horizontal")).map_err(|e| cx.error(Code::R1002, e))?,
            _ => invert(&d),
        };
        Ok(dataset_output(out))
    }
}

struct Synthetic(Op);

impl Stage for Synthetic {
    fn output(&self) -> &'static Kind {
        &DATASET
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        images_only(cx, "like", "synthetic image sets")
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        let like = cx.meta("like").unwrap_or_default();
        Meta { shape: like.shape, classes: None, n: cx.args.int("n").map(|n| n as usize), bounds: Some((0.0, 1.0)) }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let like = cx.input::<Dataset>("like")?;
        let n = cx.args().int("n").unwrap_or(1000) as usize;
        let mut rng = cx.take_rng();
        let d = match self.0 {
            Op::Constant => constant_images(n, &like.shape, &mut rng),
            _ => noise_images(n, &like.shape, &mut rng),
        };
        let mut out = dataset_output(d);
        // The dataset kind declares `classes`: unlabelled images have none.
        out.metrics.insert("classes".into(), 0.0);
        Ok(out)
    }
}
