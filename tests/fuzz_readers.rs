//! Every file a run reads, mutated and truncated, must give a coded error that names the
//! file (or, for the cache, a recomputation), never a panic or a hang: IDX image/label pairs
//! (raw and gzip), CIFAR-10 batches, the digits CSV, safetensors weights for `load_model`,
//! training checkpoints and their YAML for `resume:`, stage manifests and cached artifacts,
//! and `flowline test` snapshots. The seeds are real files: the shared datasets where
//! `../shared/data` is present (synthetic files in the same formats otherwise) and files
//! flowline itself writes. CI runs a few thousand cases;
//! `FLOWLINE_FUZZ_CASES=100000 cargo test --release --test fuzz_readers -- --nocapture` is
//! the long run.

mod common;

use flowline::data::files::DataError;
use flowline::diag::{Code, Diag, SourceMap};
use flowline::rng::Rng;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// No single read may take longer than this (a hang, for a file of a few kilobytes).
const SLOW: Duration = Duration::from_secs(20);

fn total_cases() -> usize {
    std::env::var("FLOWLINE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000)
}

/// Bit flips, random bytes, header fields set to extremes, truncation, insertions,
/// deletions and duplicated runs; one to three of them per case.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        let n = b.len().max(1);
        match rng.below(8) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.below(256) as u8;
            }
            2 if b.len() >= 4 => {
                // A length or dimension field near the start set to an extreme.
                let i = rng.below(b.len().min(64) - 3);
                let v: [u8; 4] = [[0xff; 4], [0; 4], [0x7f, 0xff, 0xff, 0xff], [0, 0, 0, 1]][rng.below(4)];
                b[i..i + 4].copy_from_slice(&v);
            }
            3 => b.truncate(rng.below(n)),
            4 => {
                let i = rng.below(n);
                let extra: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.below(256) as u8).collect();
                b.splice(i.min(b.len())..i.min(b.len()), extra);
            }
            5 if !b.is_empty() => {
                let i = rng.below(b.len());
                let j = (i + 1 + rng.below(32)).min(b.len());
                b.drain(i..j);
            }
            6 if !b.is_empty() => {
                let i = rng.below(b.len());
                let j = (i + 1 + rng.below(64)).min(b.len());
                let run = b[i..j].to_vec();
                b.splice(i..i, run);
            }
            _ => {
                // Text files: swap a digit or a separator for another character.
                let i = rng.below(n);
                if i < b.len() {
                    b[i] = b",:.-e0 9\n\"[]{}#"[rng.below(15)];
                }
            }
        }
    }
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn gunzip_if(bytes: Vec<u8>) -> Vec<u8> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).unwrap();
        out
    } else {
        bytes
    }
}

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// An IDX image/label pair of `n` examples: the first of the real MNIST test set where the
/// shared data is present, else synthetic digits of the same shape.
fn idx_seed(n: usize) -> (Vec<u8>, Vec<u8>) {
    if let Some(dir) = common::shared_data() {
        let img = gunzip_if(std::fs::read(dir.join("mnist/t10k-images-idx3-ubyte.gz")).unwrap());
        let lab = gunzip_if(std::fs::read(dir.join("mnist/t10k-labels-idx1-ubyte.gz")).unwrap());
        return (idx(&[n as u32, 28, 28], &img[16..16 + n * 784]), idx(&[n as u32], &lab[8..8 + n]));
    }
    let mut rng = Rng::new(1);
    let pixels: Vec<u8> = (0..n * 784).map(|_| if rng.uniform() < 0.2 { 255 } else { 0 }).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    (idx(&[n as u32, 28, 28], &pixels), idx(&[n as u32], &labels))
}

fn cifar_seed() -> Vec<u8> {
    if let Some(dir) = common::shared_data() {
        return std::fs::read(dir.join("cifar10/test_batch_first20.bin")).unwrap()[..4 * 3073].to_vec();
    }
    (0..4 * 3073).map(|i| if i % 3073 == 0 { (i / 3073) as u8 } else { (i % 251) as u8 }).collect()
}

fn digits_seed() -> Vec<u8> {
    if let Some(dir) = common::shared_data() {
        let text = String::from_utf8(gunzip_if(std::fs::read(dir.join("digits/digits.csv.gz")).unwrap())).unwrap();
        return text.lines().take(30).collect::<Vec<_>>().join("\n").into_bytes();
    }
    (0..30)
        .map(|r| {
            let px: Vec<String> = (0..64).map(|i| ((i * 7 + r) % 17).to_string()).collect();
            format!("{},{}", px.join(","), r % 10)
        })
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

/// The error names the file it is about.
fn names(e: &DataError, file: &Path) -> bool {
    let name = file.file_name().unwrap().to_string_lossy().to_string();
    e.to_string().contains(&name)
}

/// Run `case` under a panic guard and a time limit.
fn guarded<T>(what: &str, i: usize, case: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(case))
        .unwrap_or_else(|_| panic!("{what}: case {i} panicked"));
    assert!(started.elapsed() < SLOW, "{what}: case {i} took {:?}", started.elapsed());
    out
}

/// Keep the mutated file that broke a case, for the one who investigates it.
fn keep_on_failure(dir: &Path, files: &[&Path]) {
    let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz_readers_failure");
    let _ = std::fs::create_dir_all(&keep);
    for f in files {
        let _ = std::fs::copy(f, keep.join(f.file_name().unwrap()));
    }
    let _ = dir;
}

#[test]
fn dataset_readers_never_panic_on_mutated_files() {
    let cases = total_cases() * 6 / 10;
    let dir = tempfile::tempdir().unwrap();
    let (img, lab) = idx_seed(40);
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("idx-images", img.clone()),
        ("idx-labels", lab.clone()),
        ("idx-images-gz", gzip(&img)),
        ("idx-labels-gz", gzip(&lab)),
        ("cifar", cifar_seed()),
        ("digits", digits_seed()),
        ("digits-gz", gzip(&digits_seed())),
    ];
    let (img_path, lab_path) = (dir.path().join("images-idx3-ubyte"), dir.path().join("labels-idx1-ubyte"));
    let (cifar_path, digits_path) = (dir.path().join("batch.bin"), dir.path().join("digits.csv"));
    let mut rng = Rng::new(23);
    let mut errors = 0;
    for i in 0..cases {
        let (kind, seed) = &seeds[i % seeds.len()];
        let bytes = mutate(seed, &mut rng);
        std::fs::write(&img_path, if kind.starts_with("idx-images") { &bytes } else { &img }).unwrap();
        std::fs::write(&lab_path, if kind.starts_with("idx-labels") { &bytes } else { &lab }).unwrap();
        let (result, file) = match *kind {
            k if k.starts_with("idx") => {
                let file = if k.starts_with("idx-images") { img_path.clone() } else { lab_path.clone() };
                let (ip, lp) = (img_path.clone(), lab_path.clone());
                let r = guarded(kind, i, move || {
                    flowline::data::idx::load_pair(&ip, &lp, None)
                        .and_then(|(_, _, y, _)| flowline::data::idx::check_labels(&lp, &y, 10).map(|_| y.len()))
                });
                (r, file)
            }
            "cifar" => {
                std::fs::write(&cifar_path, &bytes).unwrap();
                let p = cifar_path.clone();
                let r = guarded(kind, i, move || {
                    let (mut x, mut y) = (Vec::new(), Vec::new());
                    flowline::data::cifar::load_batch(&p, &mut x, &mut y).map(|_| y.len())
                });
                (r, cifar_path.clone())
            }
            _ => {
                std::fs::write(&digits_path, &bytes).unwrap();
                let p = digits_path.clone();
                (guarded(kind, i, move || flowline::data::digits::load(&p).map(|(_, y)| y.len())), digits_path.clone())
            }
        };
        match result {
            Ok(n) => assert!(n > 0, "{kind}: case {i} read an empty dataset without an error"),
            Err(e) => {
                errors += 1;
                if !names(&e, &file) || !matches!(e, DataError::Format { .. } | DataError::Io { .. }) {
                    keep_on_failure(dir.path(), &[&file]);
                    panic!("{kind}: case {i}: the error does not name {}: {e}", file.display());
                }
            }
        }
    }
    eprintln!("dataset readers: {cases} mutated files, {errors} rejected with a format error");
    assert!(errors > cases / 3, "mutations should mostly be caught ({errors} of {cases})");
}

/// A checked plan for `src`, run in `out` (forced: the mutated file keeps its name, so the
/// cache key does not change with its content).
fn plan_of(src: &str) -> flowline::Plan {
    let mut sources = SourceMap::new();
    let id = sources.add("fuzz.flow", None, src.to_string());
    flowline::check(&mut sources, id, &flowline::CheckOptions::default()).and_then(flowline::plan).unwrap()
}

fn run(plan: &flowline::Plan, out: &Path, force: bool, data_dir: &Path) -> Result<flowline::Report, Vec<Diag>> {
    let opts = flowline::exec::RunOptions {
        out: out.to_path_buf(),
        force,
        quiet: true,
        data_dir: data_dir.to_path_buf(),
        ..Default::default()
    };
    flowline::run(plan, &opts).map_err(|f| f.diags)
}

/// A runtime error for a file the run reads: coded R1002 (malformed) or R1004 (missing or
/// unopenable), naming the file.
fn assert_names_file(diags: &[Diag], file: &str, what: &str, i: usize) {
    let d = &diags[0];
    let text = format!("{} {}", d.message, d.hints.join(" "));
    assert!(
        matches!(d.code, Code::R1002 | Code::R1004) && text.contains(file),
        "{what}: case {i}: expected R1002/R1004 naming {file}, got {}: {text}",
        d.code.as_str()
    );
}

/// The dataset stages, which map reader errors to coded diagnostics, on mutated IDX files
/// in a data directory.
#[test]
fn dataset_stages_give_coded_errors_naming_mutated_files() {
    let cases = (total_cases() / 20).max(20);
    let data = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("mnist")).unwrap();
    let (img, lab) = idx_seed(30);
    let plan = plan_of("let d = mnist(split: test)\n");
    let mut rng = Rng::new(5);
    for i in 0..cases {
        let images = i % 2 == 0;
        let bytes = mutate(if images { &img } else { &lab }, &mut rng);
        std::fs::write(data.path().join("mnist/t10k-images-idx3-ubyte"), if images { &bytes } else { &img }).unwrap();
        std::fs::write(data.path().join("mnist/t10k-labels-idx1-ubyte"), if images { &lab } else { &bytes }).unwrap();
        let file = if images { "t10k-images-idx3-ubyte" } else { "t10k-labels-idx1-ubyte" };
        let r = guarded("mnist stage", i, || run(&plan, out.path(), true, data.path()));
        if let Err(d) = r {
            assert_names_file(&d, file, "mnist stage", i);
        }
    }
}

/// Safetensors weights for `load_model`, written by flowline under PyTorch-style names, then
/// mutated; the loaded model is evaluated, so weights that load must also run.
#[test]
fn load_model_gives_coded_errors_on_mutated_weights() {
    let cases = (total_cases() / 10).max(20);
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("w.safetensors");
    let mut rng = Rng::new(9);
    let specs = vec![
        flowline::nn::LayerSpec::Linear { input: None, out: 8 },
        flowline::nn::LayerSpec::Act(flowline::nn::Activation::Relu),
        flowline::nn::LayerSpec::Linear { input: None, out: 2 },
    ];
    let net = flowline::nn::Net::init(&specs, &[2], &mut rng, &candle_core::Device::Cpu).unwrap();
    let tensors: std::collections::HashMap<String, candle_core::Tensor> =
        net.named_tensors().into_iter().map(|(n, t)| (n.replacen("layers.", "net.", 1), t)).collect();
    candle_core::safetensors::save(&tensors, &weights).unwrap();
    let seed = std::fs::read(&weights).unwrap();
    let src = format!(
        "let m = load_model(path: \"{}\", arch: linear(8) |> relu |> linear(2), input: [2], prefix: \"net.\")\n\
         let d = toy2d(\"moons\", n: 20)\nlet s = evaluate(m, d)\n",
        weights.display()
    );
    let plan = plan_of(&src);
    let out = dir.path().join("out");
    run(&plan, &out, true, dir.path()).expect("the unmutated weights load");
    for i in 0..cases {
        std::fs::write(&weights, mutate(&seed, &mut rng)).unwrap();
        let r = guarded("load_model", i, || run(&plan, &out, true, dir.path()));
        if let Err(d) = r {
            assert_names_file(&d, "w.safetensors", "load_model", i);
        }
    }
}

/// Checkpoints (`step_N.safetensors` and the YAML beside it) that `resume:` reads.
#[test]
fn resume_gives_coded_errors_on_mutated_checkpoints() {
    let cases = (total_cases() / 10).max(20);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let base = "seed 1\nlet data = toy2d(\"circles\", n: 64)\n\
        let fit = train(linear(8) |> tanh |> linear(2), data, optimizer: adam(lr: 1e-2), batch: 16, iters: 4, checkpoint_every: 2)\n";
    run(&plan_of(base), &out, true, dir.path()).unwrap();
    let ckpt = out.join("fit/checkpoints/step_2.safetensors");
    let meta = ckpt.with_extension("yaml");
    let (seed_w, seed_y) = (std::fs::read(&ckpt).unwrap(), std::fs::read(&meta).unwrap());
    let resumed = plan_of(&base.replace("checkpoint_every: 2)", "resume: \"saved/step_2.safetensors\")"));
    let saved = out.join("saved");
    std::fs::create_dir_all(&saved).unwrap();
    let mut rng = Rng::new(11);
    for i in 0..cases {
        let yaml = i % 2 == 1;
        let (w, y) = if yaml {
            (seed_w.clone(), mutate(&seed_y, &mut rng))
        } else {
            (mutate(&seed_w, &mut rng), seed_y.clone())
        };
        std::fs::write(saved.join("step_2.safetensors"), w).unwrap();
        std::fs::write(saved.join("step_2.yaml"), y).unwrap();
        let r = guarded("resume", i, || run(&resumed, &out, true, dir.path()));
        match r {
            // Finite but absurd weights (a flipped exponent bit) load, and training on them
            // may diverge: that is the trainer's R2001, not a reader's failure.
            Err(d) if d[0].code == Code::R2001 => {}
            Err(d) => assert_names_file(&d, "step_2.", "resume", i),
            Ok(_) => {}
        }
    }
}

/// Stage manifests and cached artifacts: a damaged cache is recomputed, never trusted
/// blindly into a panic, and never fails the run.
#[test]
fn a_damaged_cache_is_recomputed() {
    let cases = (total_cases() / 10).max(20);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let plan = plan_of(
        "seed 1\nlet data = toy2d(\"moons\", n: 64)\n\
         let fit = train(linear(8) |> relu |> linear(2), data, batch: 16, iters: 3)\nlet s = evaluate(fit, data)\n",
    );
    run(&plan, &out, false, dir.path()).unwrap();
    let files = ["data/stage.yaml", "data/data.safetensors", "fit/stage.yaml", "fit/model.safetensors", "s/stage.yaml"];
    let seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(out.join(f)).unwrap()).collect();
    let mut rng = Rng::new(13);
    let mut recomputed = 0;
    for i in 0..cases {
        let k = i % files.len();
        for (f, s) in files.iter().zip(&seeds) {
            std::fs::write(out.join(f), s).unwrap();
        }
        std::fs::write(out.join(files[k]), mutate(&seeds[k], &mut rng)).unwrap();
        let r = guarded("cache", i, || run(&plan, &out, false, dir.path()));
        match r {
            Ok(report) => recomputed += report.stages.iter().any(|s| s.status == "executed") as usize,
            Err(d) => panic!("cache: case {i} ({}): the run failed: {:?}", files[k], d),
        }
    }
    assert!(recomputed > 0);
}

/// `flowline test` snapshots.
#[test]
fn snapshot_files_never_panic_the_parser() {
    let cases = (total_cases() / 10).max(20);
    let seed = std::fs::read(common::root().join("pipelines/quickstart.snap.yaml")).unwrap();
    let mut rng = Rng::new(17);
    let mut errors = 0;
    for i in 0..cases {
        let bytes = mutate(&seed, &mut rng);
        let text = String::from_utf8_lossy(&bytes).to_string();
        errors += guarded("snapshot", i, move || flowline::snapshot::parse(&text).is_err()) as usize;
    }
    eprintln!("snapshots: {cases} mutated, {errors} rejected");
}
