//! Real datasets read from the data directory (`--data-dir`, `FLOWLINE_DATA`, `./data`),
//! and dataset transforms.

use super::dataset::{DATASET, SPLITS, Split, dataset_output};
use crate::data::{self, DataError, Dataset, files};
use crate::diag::{Code, Diag};
use crate::lang::{Args, Builtin, Dflt, Kind, Meta, Metrics, Output, Param, RunCtx, Stage, StaticCall, Ty};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const SPLIT_NAMES: [&str; 2] = ["train", "test"];

/// Images are scaled to [0, 1].
const UNIT: (f64, f64) = (0.0, 1.0);

/// The UCI optical digits file holds 1,797 images.
const DIGITS_N: usize = 1797;

/// How one IDX dataset is laid out in the data directory.
struct IdxSet {
    name: &'static str,
    folders: &'static [&'static str],
    train: (&'static [&'static str], &'static [&'static str]),
    test: (&'static [&'static str], &'static [&'static str]),
    doc: &'static str,
    /// Class names, where they are not the digits 0-9.
    names: Option<&'static [&'static str]>,
}

/// The names of a set's classes, as a dataset keeps them.
fn names(n: Option<&'static [&'static str]>) -> Option<Vec<String>> {
    n.map(|n| n.iter().map(|s| s.to_string()).collect())
}

const FASHION_NAMES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];
const NOTMNIST_NAMES: [&str; 10] = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J"];
const CIFAR10_NAMES: [&str; 10] =
    ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

const MNIST: IdxSet = IdxSet {
    name: "mnist",
    folders: &["mnist", "MNIST"],
    train: (
        &["train-images-idx3-ubyte", "train-images-first10k-idx3-ubyte"],
        &["train-labels-idx1-ubyte", "train-labels-first10k-idx1-ubyte"],
    ),
    test: (&["t10k-images-idx3-ubyte"], &["t10k-labels-idx1-ubyte"]),
    doc: "MNIST digits, 28x28 grey images scaled to [0, 1], 10 classes.",
    names: None,
};

const FASHION: IdxSet = IdxSet {
    name: "fashion_mnist",
    folders: &["fashion-mnist", "fashion_mnist"],
    train: (&["train-images-idx3-ubyte"], &["train-labels-idx1-ubyte"]),
    test: (
        &["t10k-images-idx3-ubyte", "t10k-images-first20-idx3-ubyte"],
        &["t10k-labels-idx1-ubyte", "t10k-labels-first20-idx1-ubyte"],
    ),
    doc: "Fashion-MNIST, 28x28 grey images of clothing scaled to [0, 1], 10 classes.",
    names: Some(&FASHION_NAMES),
};

const NOTMNIST: IdxSet = IdxSet {
    name: "notmnist",
    folders: &["notmnist", "notMNIST"],
    train: (&["train-images-idx3-ubyte"], &["train-labels-idx1-ubyte"]),
    test: (&["t10k-images-idx3-ubyte"], &["t10k-labels-idx1-ubyte"]),
    doc: "notMNIST letters A-J in MNIST's format (28x28, [0, 1]): the usual out-of-distribution set for MNIST models.",
    names: Some(&NOTMNIST_NAMES),
};

fn split_params() -> Vec<Param> {
    vec![
        Param::new("split", Ty::choice(&SPLIT_NAMES), Dflt::Str("train"), "which part"),
        Param::new("limit", Ty::opt(Ty::Int), Dflt::None, "keep only the first `limit` examples")
            .within(Some(1.0), None),
    ]
}

pub fn builtins() -> Vec<Builtin> {
    let idx = |set: &'static IdxSet| Builtin::stage(set.name, set.doc, split_params(), IdxStage(set));
    vec![
        idx(&MNIST),
        idx(&FASHION),
        idx(&NOTMNIST),
        Builtin::stage(
            "cifar10",
            "CIFAR-10 binary batches: 32x32 colour images scaled to [0, 1], 10 classes.",
            split_params(),
            Cifar,
        ),
        Builtin::stage(
            "digits",
            "The UCI optical digits (scikit-learn's CSV): 8x8 grey images scaled to [0, 1], 10 classes; all 1,797 in `train`.",
            vec![
                Param::new("limit", Ty::opt(Ty::Int), Dflt::None, "keep only the first `limit` examples")
                    .within(Some(1.0), None),
            ],
            Digits,
        ),
        Builtin::stage(
            "idx",
            "Any IDX image/label pair (raw or .gz), paths relative to the data directory.",
            vec![
                Param::new("images", Ty::Str, Dflt::Required, "the images file"),
                Param::new("labels", Ty::Str, Dflt::Required, "the labels file"),
                Param::new("classes", Ty::Int, Dflt::Int(10), "number of classes").within(Some(1.0), None),
                Param::new("limit", Ty::opt(Ty::Int), Dflt::None, "keep only the first `limit` examples")
                    .within(Some(1.0), None),
            ],
            Idx,
        ),
        Builtin::stage(
            "downsample",
            "Average-pool images by `factor` (2 turns 28x28 into 14x14).",
            vec![
                Param::new("data", Ty::kind(&DATASET), Dflt::Required, "images"),
                Param::new("factor", Ty::Int, Dflt::Int(2), "pooling factor").within(Some(1.0), None),
            ],
            Downsample,
        ),
        Builtin::stage(
            "dequantize",
            "Uniform dequantization (k + u) / levels, for densities on [0, 1] data.",
            vec![
                Param::new("data", Ty::kind(&DATASET), Dflt::Required, "data in [0, 1]"),
                Param::new("levels", Ty::Int, Dflt::Int(256), "grey levels of the original data")
                    .within(Some(2.0), None),
            ],
            Dequantize,
        ),
        Builtin::stage(
            "logit",
            "logit(alpha + (1 - 2 alpha) x), the usual pre-processing of images for flows.",
            vec![
                Param::new("data", Ty::kind(&DATASET), Dflt::Required, "data in [0, 1]"),
                Param::new("alpha", Ty::Float, Dflt::Float(0.05), "boundary margin").within(Some(0.0), Some(0.49)),
            ],
            Logit,
        ),
        Builtin::stage(
            "split",
            "Shuffle (seeded) and split: `first` holds `fraction` of the examples, `second` the rest.",
            vec![
                Param::new("data", Ty::kind(&DATASET), Dflt::Required, "data to split"),
                Param::new("fraction", Ty::Float, Dflt::Float(0.9), "share of the first part")
                    .within(Some(0.0), Some(1.0)),
            ],
            SplitStage,
        ),
    ]
}

fn data_error(cx: &RunCtx, e: DataError) -> Diag {
    match &e {
        DataError::Missing { .. } => cx
            .error(Code::R1004, e.to_string())
            .hint(format!(
                "the data directory is {}; pass `--data-dir DIR` or set FLOWLINE_DATA",
                cx.data_dir().display()
            ))
            .hint("`flowline data fetch NAME` downloads and verifies the standard files"),
        DataError::Io { .. } => cx.error(Code::R1004, e.to_string()).hint("check the file's permissions"),
        DataError::Format { .. } => cx
            .error(Code::R1002, e.to_string())
            .hint("the file is damaged or not in the expected format; fetch it again"),
    }
}

/// The first `limit` examples of a 10-class dataset read whole.
fn first_n(mut x: Vec<f32>, mut y: Vec<u32>, shape: Vec<usize>, limit: Option<usize>) -> Dataset {
    let n = limit.map_or(y.len(), |l| l.min(y.len()));
    x.truncate(n * shape.iter().product::<usize>());
    y.truncate(n);
    Dataset { x, n, shape, y: Some(y), classes: Some(10), names: None }
}

fn limit(cx: &RunCtx) -> Option<usize> {
    cx.args().int("limit").map(|v| v as usize)
}

/// The examples read, with a warning where `limit` asked for more than there are.
fn limited(cx: &mut RunCtx, d: Dataset) -> Output {
    if let Some(l) = limit(cx)
        && d.n < l
    {
        let n = d.n;
        cx.warn(Code::W2001, format!("`limit: {l}` asks for more examples than the data holds: all {n} are used"));
    }
    dataset_output(d)
}

fn first_folder(base: &Path, folders: &[&str]) -> PathBuf {
    folders.iter().map(|f| base.join(f)).find(|p| p.is_dir()).unwrap_or_else(|| base.join(folders[0]))
}

struct IdxStage(&'static IdxSet);

impl Stage for IdxStage {
    fn output(&self) -> &'static Kind {
        &DATASET
    }
    fn reads_data_dir(&self) -> bool {
        true
    }
    fn meta(&self, _cx: &StaticCall) -> Meta {
        // How many examples depends on which file the data directory holds.
        Meta { shape: Some(vec![1, 28, 28]), classes: Some(10), n: None, bounds: Some(UNIT) }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let dir = first_folder(cx.data_dir(), self.0.folders);
        let (images, labels) = if cx.args().text("split") == Some("test") { self.0.test } else { self.0.train };
        let load = || -> Result<Dataset, DataError> {
            let img = files::find(&dir, images)?;
            let lab = files::find(&dir, labels)?;
            let (x, shape, y, n) = data::idx::load_pair(&img, &lab, limit(cx))?;
            data::idx::check_labels(&lab, &y, 10)?;
            Ok(Dataset { x, n, shape, y: Some(y), classes: Some(10), names: names(self.0.names) })
        };
        let d = load().map_err(|e| data_error(cx, e))?;
        Ok(limited(cx, d))
    }
}

struct Cifar;

impl Stage for Cifar {
    fn output(&self) -> &'static Kind {
        &DATASET
    }
    fn reads_data_dir(&self) -> bool {
        true
    }
    fn meta(&self, _cx: &StaticCall) -> Meta {
        Meta { shape: Some(vec![3, 32, 32]), classes: Some(10), n: None, bounds: Some(UNIT) }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let dir = first_folder(cx.data_dir(), &["cifar10", "cifar-10-batches-bin"]);
        let batches: Vec<Vec<&str>> = if cx.args().text("split") == Some("test") {
            vec![vec!["test_batch.bin", "test_batch_first20.bin"]]
        } else {
            (1..=5)
                .map(|i| {
                    vec![
                        [
                            "data_batch_1.bin",
                            "data_batch_2.bin",
                            "data_batch_3.bin",
                            "data_batch_4.bin",
                            "data_batch_5.bin",
                        ][i - 1],
                    ]
                })
                .collect()
        };
        let mut x = Vec::new();
        let mut y = Vec::new();
        for names in batches {
            let path = files::find(&dir, &names).map_err(|e| data_error(cx, e))?;
            data::cifar::load_batch(&path, &mut x, &mut y).map_err(|e| data_error(cx, e))?;
        }
        let d = first_n(x, y, vec![3, 32, 32], limit(cx));
        Ok(limited(cx, Dataset { names: names(Some(&CIFAR10_NAMES)), ..d }))
    }
}

struct Digits;

impl Stage for Digits {
    fn output(&self) -> &'static Kind {
        &DATASET
    }
    fn reads_data_dir(&self) -> bool {
        true
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        match cx.args.int("limit") {
            Some(l) if l as usize > DIGITS_N => vec![
                Diag::new(Code::W2001, super::clamp::message("limit", l as usize, DIGITS_N))
                    .at(cx.args.get("limit").map_or(cx.span, |v| v.span), "more than the file holds")
                    .hint(format!("the UCI digits are {DIGITS_N} images; leave `limit` out to take them all")),
            ],
            _ => vec![],
        }
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        let n = cx.args.int("limit").map_or(DIGITS_N, |l| (l as usize).min(DIGITS_N));
        Meta { shape: Some(vec![1, 8, 8]), classes: Some(10), n: Some(n), bounds: Some(UNIT) }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let dir = first_folder(cx.data_dir(), &["digits"]);
        let path = files::find(&dir, &["digits.csv", "optdigits.csv"]).map_err(|e| data_error(cx, e))?;
        let (x, y) = data::digits::load(&path).map_err(|e| data_error(cx, e))?;
        let d = first_n(x, y, vec![1, 8, 8], limit(cx));
        Ok(limited(cx, d))
    }
}

struct Idx;

impl Stage for Idx {
    fn output(&self) -> &'static Kind {
        &DATASET
    }
    fn reads_data_dir(&self) -> bool {
        true
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        Meta { shape: None, classes: cx.args.int("classes").map(|k| k as usize), n: None, bounds: Some(UNIT) }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let resolve = |name: &str| {
            let p = PathBuf::from(name);
            if p.is_absolute() || p.exists() { p } else { cx.data_dir().join(p) }
        };
        let images = resolve(cx.args().text("images").unwrap_or(""));
        let labels = resolve(cx.args().text("labels").unwrap_or(""));
        for p in [&images, &labels] {
            if !p.is_file() {
                return Err(data_error(cx, DataError::Missing { tried: vec![p.clone()] }));
            }
        }
        let classes = cx.args().int("classes").unwrap_or(10) as usize;
        let (x, shape, y, n) = data::idx::load_pair(&images, &labels, limit(cx)).map_err(|e| data_error(cx, e))?;
        data::idx::check_labels(&labels, &y, classes).map_err(|e| data_error(cx, e))?;
        Ok(limited(cx, Dataset { x, n, shape, y: Some(y), classes: Some(classes), names: None }))
    }
}

/// Transforms keep the classes; their static shape follows the input's.
fn input_meta(cx: &StaticCall) -> Meta {
    cx.meta("data").unwrap_or_default()
}

struct Downsample;

impl Stage for Downsample {
    fn output(&self) -> &'static Kind {
        &DATASET
    }
    fn check(&self, cx: &StaticCall) -> Vec<Diag> {
        let f = cx.args.int("factor").unwrap_or(2) as usize;
        match (input_meta(cx).shape, cx.args.get("data")) {
            (Some(s), Some(v)) if s.len() != 3 || s[1] % f != 0 || s[2] % f != 0 => vec![
                Diag::new(Code::E4001, format!("examples of shape {s:?} cannot be downsampled by {f}"))
                    .at(v.span, "wrong shape")
                    .hint("downsample images [channels, height, width] whose sides the factor divides"),
            ],
            _ => vec![],
        }
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        let f = cx.args.int("factor").unwrap_or(2) as usize;
        let m = input_meta(cx);
        Meta {
            shape: m.shape.map(|s| if s.len() == 3 { vec![s[0], s[1] / f.max(1), s[2] / f.max(1)] } else { s }),
            ..m
        }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let d = cx.input::<Dataset>("data")?;
        let f = cx.args().int("factor").unwrap_or(2) as usize;
        data::downsample(&d, f).map(dataset_output).map_err(|e| cx.error(Code::R1002, e))
    }
}

struct Dequantize;

impl Stage for Dequantize {
    fn output(&self) -> &'static Kind {
        &DATASET
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        input_meta(cx)
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let d = cx.input::<Dataset>("data")?;
        let levels = cx.args().int("levels").unwrap_or(256) as usize;
        let mut rng = cx.take_rng();
        Ok(dataset_output(data::dequantize(&d, levels, &mut rng)))
    }
}

struct Logit;

impl Stage for Logit {
    fn output(&self) -> &'static Kind {
        &DATASET
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        // logit maps [0, 1] onto the whole real line.
        Meta { bounds: None, ..input_meta(cx) }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let d = cx.input::<Dataset>("data")?;
        Ok(dataset_output(data::logit(&d, cx.args().float("alpha").unwrap_or(0.05))))
    }
}

struct SplitStage;

impl Stage for SplitStage {
    fn output(&self) -> &'static Kind {
        &SPLITS
    }
    fn parts(&self, _args: &Args) -> Vec<(String, Ty)> {
        vec![("first".into(), Ty::kind(&DATASET)), ("second".into(), Ty::kind(&DATASET))]
    }
    /// How many examples each part got.
    fn metrics(&self, _args: &Args) -> Vec<String> {
        vec!["first".into(), "second".into()]
    }
    fn meta(&self, cx: &StaticCall) -> Meta {
        // One meta for both parts: their sizes differ.
        Meta { n: None, ..input_meta(cx) }
    }
    fn run(&self, cx: &mut RunCtx) -> Result<Output, Diag> {
        let d = cx.input::<Dataset>("data")?;
        let mut rng = cx.take_rng();
        let (a, b) = data::split(&d, cx.args().float("fraction").unwrap_or(0.9), &mut rng);
        let mut metrics = Metrics::new();
        metrics.insert("first".into(), a.n as f64);
        metrics.insert("second".into(), b.n as f64);
        Ok(Output { artifact: Arc::new(Split(Arc::new(a), Arc::new(b))), metrics, files: vec![] })
    }
}
