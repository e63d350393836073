//! Reading the real datasets in ../shared/data. Every test here is named
//! `*_needs_shared_data` and skips, saying why, when that folder is absent.

mod common;

use common::{run_opts, shared_data_or_skip};
use flowline::CheckOptions;
use flowline::diag::SourceMap;

/// Run a one-stage pipeline and return its dataset metrics.
fn metrics(src: &str, data_dir: &std::path::Path) -> flowline::exec::Metrics {
    let tmp = tempfile::tempdir().unwrap();
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src);
    let plan = flowline::check(&mut sources, id, &CheckOptions::default()).and_then(flowline::plan).unwrap();
    let mut opts = run_opts(tmp.path(), "t.flow");
    opts.data_dir = data_dir.to_path_buf();
    let report = flowline::run(&plan, &opts).unwrap_or_else(|f| panic!("{}", common::render(&f.diags, &sources)));
    report.stages.last().unwrap().metrics.clone()
}

fn labels_of(path: &std::path::Path, n: usize) -> Vec<u32> {
    let d = flowline::stages::load_dataset(path, Some(10)).unwrap();
    d.y.unwrap()[..n].to_vec()
}

#[test]
fn mnist_splits_load_with_their_published_counts_needs_shared_data() {
    let Some(dir) = shared_data_or_skip("mnist_splits") else { return };
    let m = metrics("let d = mnist(split: \"test\")", &dir);
    assert_eq!((m["n"], m["features"], m["classes"]), (10000.0, 784.0, 10.0));
    let m = metrics("let d = mnist(split: \"train\")", &dir);
    assert_eq!(m["n"], 10000.0);
}

#[test]
fn first_labels_match_the_published_files_needs_shared_data() {
    let Some(dir) = shared_data_or_skip("first_labels") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = "let a = mnist(split: \"train\", limit: 5)\nlet b = mnist(split: \"test\", limit: 5)\nlet c = cifar10(split: \"test\")\nlet d = digits(limit: 5)\nlet e = fashion_mnist(split: \"test\")\nlet f = notmnist(split: \"test\", limit: 5)\n";
    let mut sources = SourceMap::new();
    let id = sources.add("t.flow", None, src);
    let plan = flowline::check(&mut sources, id, &CheckOptions::default()).and_then(flowline::plan).unwrap();
    let mut opts = run_opts(tmp.path(), "t.flow");
    opts.data_dir = dir;
    flowline::run(&plan, &opts).unwrap();
    // MNIST's training set starts 5 0 4 1 9, its test set 7 2 1 0 4; CIFAR-10's test set
    // starts cat, ship, ship, airplane; the UCI digits CSV starts 0 1 2 3 4.
    assert_eq!(labels_of(&tmp.path().join("a/data.safetensors"), 5), vec![5, 0, 4, 1, 9]);
    assert_eq!(labels_of(&tmp.path().join("b/data.safetensors"), 5), vec![7, 2, 1, 0, 4]);
    assert_eq!(labels_of(&tmp.path().join("c/data.safetensors"), 4), vec![3, 8, 8, 0]);
    assert_eq!(labels_of(&tmp.path().join("d/data.safetensors"), 5), vec![0, 1, 2, 3, 4]);
    let e = flowline::stages::load_dataset(&tmp.path().join("e/data.safetensors"), Some(10)).unwrap();
    assert_eq!((e.n, e.shape.clone()), (20, vec![1, 28, 28]));
    let f = flowline::stages::load_dataset(&tmp.path().join("f/data.safetensors"), Some(10)).unwrap();
    assert!(f.x.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn gzip_and_raw_files_read_the_same_needs_shared_data() {
    let Some(dir) = shared_data_or_skip("gzip_and_raw") else { return };
    let tmp = tempfile::tempdir().unwrap();
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        let bytes = flowline::data::files::read(&dir.join("mnist").join(format!("{name}.gz"))).unwrap();
        std::fs::write(tmp.path().join(name), bytes).unwrap();
    }
    let gz = metrics("let d = mnist(split: \"test\", limit: 100)", &dir);
    let src = format!(
        "let d = idx(images: \"{0}/t10k-images-idx3-ubyte\", labels: \"{0}/t10k-labels-idx1-ubyte\", limit: 100)",
        tmp.path().display()
    );
    let raw = metrics(&src, &dir);
    assert_eq!(gz, raw);
}

#[test]
fn transforms_keep_labels_and_change_shapes_needs_shared_data() {
    let Some(dir) = shared_data_or_skip("transforms") else { return };
    let src = "let d = mnist(split: \"test\", limit: 50)\nlet small = downsample(d, factor: 2)\nlet parts = split(small, fraction: 0.8)\nlet q = dequantize(parts.first)\n";
    let m = metrics(src, &dir);
    assert_eq!((m["n"], m["features"]), (40.0, 196.0));
}

#[test]
fn fetch_verifies_published_digests_needs_shared_data() {
    use flowline::data::fetch::{CATALOGS, Catalog, fetch};
    let Some(dir) = shared_data_or_skip("fetch_verifies") else { return };
    // The shared MNIST test files are byte-identical to the published ones.
    let test_files = Catalog { name: "mnist-test", folder: "mnist", files: &CATALOGS[0].files[2..], extract: false };
    let data = tempfile::tempdir().unwrap();
    let lines = fetch(&test_files, data.path(), Some(&dir.join("mnist"))).unwrap();
    assert!(lines.iter().all(|l| l.contains("fetched and verified")), "{lines:?}");
    let again = fetch(&test_files, data.path(), Some(&dir.join("mnist"))).unwrap();
    assert!(again.iter().all(|l| l.contains("present and verified")), "{again:?}");

    // A corrupted mirror: one flipped byte is caught and nothing is written.
    let mirror = tempfile::tempdir().unwrap();
    for f in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        let mut bytes = std::fs::read(dir.join("mnist").join(f)).unwrap();
        if f.starts_with("t10k-labels") {
            let k = bytes.len() / 2;
            bytes[k] ^= 0x01;
        }
        std::fs::write(mirror.path().join(f), bytes).unwrap();
    }
    let fresh = tempfile::tempdir().unwrap();
    let err = fetch(&test_files, fresh.path(), Some(mirror.path())).unwrap_err();
    assert!(err.contains("t10k-labels-idx1-ubyte.gz: sha256 is") && err.contains("f7ae60f92e00"), "{err}");
    assert!(!fresh.path().join("mnist/t10k-labels-idx1-ubyte.gz").exists());
}

/// The skip rule of the `*_needs_shared_data` tests: run with the data, skip (saying why)
/// without it, and fail without it under CI.
#[test]
fn data_tests_skip_only_outside_ci() {
    assert_eq!(common::skip_or_fail("t", true, Some("true")), Ok(true));
    assert_eq!(common::skip_or_fail("t", false, None), Ok(false));
    assert_eq!(common::skip_or_fail("t", false, Some("false")), Ok(false));
    assert!(common::skip_or_fail("t", false, Some("true")).is_err());
    assert!(common::skip_or_fail("t", false, Some("1")).is_err());
}
