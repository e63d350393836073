//! The command line. Everything it does is a call into the library; this file only
//! parses arguments, renders diagnostics and chooses exit codes.

use clap::{Parser, Subcommand, ValueEnum};
use flowline::diag::{Diag, SourceMap, render_all};
use flowline::exec::{DeviceChoice, ExecutorChoice, RunOptions, flatten_metrics, show_number};
use flowline::{CheckOptions, snapshot};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "flowline",
    version,
    about = "Typed, cached ML pipelines for neural ODEs, flows and adversarial robustness"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum DeviceArg {
    Cpu,
    Cuda,
    Auto,
}

#[derive(Clone, Copy, ValueEnum)]
enum ExecutorArg {
    Local,
    Slurm,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Text,
    Dot,
}

/// A pipeline and what selects its run: overrides, sweeps, profile, output folder, stage.
#[derive(clap::Args)]
struct Target {
    file: PathBuf,
    /// Output folder (default: runs/<file stem>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Override an argument: --set fit.iters=50.
    #[arg(long = "set", value_name = "PATH=VALUE")]
    sets: Vec<String>,
    /// Run a `let` once per value: --sweep fit.optimizer.lr=1e-3,1e-4 (or fit.seed=1,2,3).
    #[arg(long = "sweep", value_name = "PATH=V1,V2,...")]
    sweeps: Vec<String>,
    /// Apply a profile defined in the file.
    #[arg(long)]
    profile: Option<String>,
    /// Run one stage (or every member of a sweep) and what it needs.
    #[arg(long)]
    only: Option<String>,
    /// Where datasets are read (default: $FLOWLINE_DATA, else ./data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl Target {
    /// The checked plan and the options of its run (what `run` and `status` share).
    fn prepare(self, sources: &mut SourceMap) -> Result<(flowline::plan::Plan, RunOptions), Vec<Diag>> {
        let Target { file, out, sets, sweeps, profile, only, data_dir } = self;
        let plan = flowline::compile(sources, &file, &CheckOptions { profile, sets, sweeps })?;
        let stem = file.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "pipeline".into());
        let share_runs = out.is_none();
        let out = out.unwrap_or_else(|| Path::new("runs").join(stem));
        let opts = RunOptions {
            share_runs,
            out,
            only,
            pipeline: file.display().to_string(),
            data_dir: flowline::exec::data_dir(data_dir),
            command: std::env::args().collect(),
            jobs: 1,
            executor: Default::default(),
            ..Default::default()
        };
        Ok((plan, opts))
    }
}

#[derive(Subcommand)]
enum DataAction {
    /// Download NAME (mnist, fashion_mnist, cifar10) into the data directory and verify
    /// every file against its published digest.
    Fetch {
        name: String,
        /// Data directory (default: $FLOWLINE_DATA, else ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Take the files from this local folder instead of the network.
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Check, plan and execute a pipeline, reusing cached stages.
    Run {
        #[command(flatten)]
        target: Target,
        #[arg(long, value_enum, default_value = "cpu")]
        device: DeviceArg,
        /// Re-execute every stage, ignoring the cache.
        #[arg(long)]
        force: bool,
        /// Run up to N independent stages at the same time, the cores shared out among them
        /// (the same results as one at a time).
        #[arg(long, short = 'j', default_value_t = 1, value_name = "N")]
        jobs: usize,
        /// No progress bars or stage lines.
        #[arg(long, short)]
        quiet: bool,
        /// Say what would run and why (as `flowline status`), and run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Where the stages run: this machine, or one Slurm job per stage (`sbatch`, with
        /// dependencies mirroring the stage graph; the run folder must be on a file system
        /// the cluster's nodes share).
        #[arg(long, value_enum, default_value = "local")]
        executor: ExecutorArg,
        /// The folder holding Slurm's commands (sbatch, squeue, scontrol, scancel), if they
        /// are not on PATH.
        #[arg(long, value_name = "DIR")]
        slurm_bin: Option<PathBuf>,
    },
    /// Run one stage of a run prepared by `run --executor slurm` (what each job runs).
    #[command(hide = true)]
    Worker {
        /// The run folder.
        run: PathBuf,
        #[arg(long)]
        stage: String,
    },
    /// What a run would do: per stage, cached, or would run and why (never run, files
    /// missing, or stale: which argument, input, seed or data changed).
    Status {
        #[command(flatten)]
        target: Target,
    },
    /// Parse, resolve, type- and shape-check; report every problem.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
        #[arg(long = "sweep", value_name = "PATH=V1,V2,...")]
        sweeps: Vec<String>,
    },
    /// Print the stage graph.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: GraphFormat,
    },
    /// List the built-ins.
    Stages,
    /// Show one built-in.
    Doc { name: String },
    /// Print the canonical formatting of a file.
    Fmt {
        file: PathBuf,
        /// Rewrite the file in place.
        #[arg(long, short)]
        write: bool,
    },
    /// Datasets: `flowline data fetch NAME` downloads and verifies the standard files.
    Data {
        #[command(subcommand)]
        action: DataAction,
    },
    /// The metrics of several runs side by side, with differences from and ratios to the
    /// first (run folders, or their report.yaml).
    Compare {
        #[arg(required = true, num_args = 2..)]
        runs: Vec<PathBuf>,
        /// Only the metrics whose values differ.
        #[arg(long)]
        changed: bool,
        /// Also write the table as CSV to this file.
        #[arg(long)]
        csv: Option<PathBuf>,
        /// Also write the table as Markdown to this file.
        #[arg(long)]
        markdown: Option<PathBuf>,
    },
    /// Run pipelines (profile `smoke` by default) and compare their metrics with NAME.snap.yaml.
    Test {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write the current metrics as the new snapshots.
        #[arg(long)]
        accept: bool,
        /// The profile to run (default: the one the snapshot records, else `smoke`).
        #[arg(long)]
        profile: Option<String>,
        #[arg(long, value_enum, default_value = "cpu")]
        device: DeviceArg,
        /// Where datasets are read (default: $FLOWLINE_DATA, else ./data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // SAFETY: nothing else runs yet.
    unsafe { flowline::threads::pin_thread_count() };
    flowline::allocator::keep_freed_memory();
    let cli = Cli::parse();
    // Deeply nested input must not exhaust the stack: the work runs on a large one.
    let worker = std::thread::Builder::new().stack_size(256 << 20).spawn(move || dispatch(cli));
    match worker.map(|h| h.join()) {
        Ok(Ok(code)) => ExitCode::from(code as u8),
        _ => {
            eprintln!("flowline: internal error (please report it)");
            ExitCode::from(1)
        }
    }
}

fn width() -> usize {
    100
}

/// Render diagnostics to stderr with a count of errors and warnings; the exit code they
/// call for.
fn fail(diags: &[Diag], sources: &SourceMap) -> i32 {
    if diags.is_empty() {
        return 0;
    }
    eprint!("{}", render_all(diags, sources, width()));
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let warnings = diags.iter().filter(|d| d.is_warning()).count();
    let errors = diags.len() - warnings;
    let line = match (errors, warnings) {
        (0, w) => count(w, "warning"),
        (e, 0) => count(e, "error"),
        (e, w) => format!("{}, {}", count(e, "error"), count(w, "warning")),
    };
    eprintln!("{line}");
    flowline::exit_code(diags)
}

/// Warnings of the check or the run: shown, never fatal.
fn warn(diags: &[Diag], sources: &SourceMap) {
    fail(diags, sources);
}

/// `flowline status` / `run --dry-run`: the table, exit status 0.
fn print_status(plan: &flowline::plan::Plan, opts: &RunOptions, sources: &SourceMap) -> i32 {
    match flowline::exec::status(flowline::registry(), plan, opts) {
        Ok(stages) => {
            print!("{}", flowline::exec::render_status(&stages));
            0
        }
        Err(d) => fail(&[d], sources),
    }
}

fn device(d: DeviceArg) -> DeviceChoice {
    match d {
        DeviceArg::Cpu => DeviceChoice::Cpu,
        DeviceArg::Cuda => DeviceChoice::Cuda,
        DeviceArg::Auto => DeviceChoice::Auto,
    }
}

fn dispatch(cli: Cli) -> i32 {
    match cli.command {
        Command::Worker { run, stage } => match flowline::exec::work(flowline::registry(), &run, &stage) {
            Ok(()) => 0,
            Err(d) => fail(&[d], &SourceMap::new()),
        },
        Command::Run { target, device: d, force, jobs, quiet, dry_run, executor, slurm_bin } => {
            let mut sources = SourceMap::new();
            let (plan, ropts) = match target.prepare(&mut sources) {
                Ok(p) => p,
                Err(diags) => return fail(&diags, &sources),
            };
            warn(&plan.checked.warnings, &sources);
            if dry_run {
                return print_status(&plan, &ropts, &sources);
            }
            let out = ropts.out.clone();
            let executor = match executor {
                ExecutorArg::Local => ExecutorChoice::Local,
                ExecutorArg::Slurm => {
                    // Ctrl-C cancels the submitted jobs instead of leaving them queued.
                    let _ = ctrlc::set_handler(|| {
                        flowline::exec::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst)
                    });
                    let worker = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("flowline"));
                    ExecutorChoice::Slurm { worker, bin: slurm_bin }
                }
            };
            let ropts = RunOptions { device: device(d), force, quiet, jobs, executor, ..ropts };
            let (report, failures) = match flowline::run(&plan, &ropts) {
                Ok(report) => (Some(report), Vec::new()),
                Err(f) => (f.report.map(|r| *r), f.diags),
            };
            if let Some(report) = &report {
                // A stage repeats, in the same words, what the checker could already say.
                let known = &plan.checked.warnings;
                let warnings: Vec<Diag> = report
                    .warnings()
                    .filter(|w| !known.iter().any(|k| k.code == w.code && k.message == w.message))
                    .cloned()
                    .collect();
                warn(&warnings, &sources);
                if !quiet {
                    for (k, v) in flatten_metrics(report) {
                        println!("{k}: {}", show_number(v));
                    }
                    println!("report: {}", out.join("report.yaml").display());
                }
            }
            fail(&failures, &sources)
        }
        Command::Status { target } => {
            let mut sources = SourceMap::new();
            match target.prepare(&mut sources) {
                Ok((plan, ropts)) => print_status(&plan, &ropts, &sources),
                Err(diags) => fail(&diags, &sources),
            }
        }
        Command::Check { files, sets, sweeps } => {
            let mut code = 0;
            for file in files {
                let mut sources = SourceMap::new();
                let id = match flowline::load(&mut sources, &file) {
                    Ok(id) => id,
                    Err(d) => {
                        code = code.max(fail(&[d], &sources).max(2));
                        continue;
                    }
                };
                let result =
                    flowline::check::check_all_profiles(flowline::registry(), &mut sources, id, &sets, &sweeps)
                        .and_then(flowline::plan);
                match result {
                    Ok(plan) => {
                        warn(&plan.checked.warnings, &sources);
                        println!("{}: ok ({} stages)", file.display(), plan.nodes().len());
                    }
                    Err(diags) => code = code.max(fail(&diags, &sources).max(2)),
                }
            }
            code
        }
        Command::Graph { file, format } => {
            let mut sources = SourceMap::new();
            match flowline::compile(&mut sources, &file, &CheckOptions::default()) {
                Ok(plan) => {
                    print!(
                        "{}",
                        match format {
                            GraphFormat::Text => flowline::plan::render_text(&plan),
                            GraphFormat::Dot => flowline::plan::render_dot(&plan),
                        }
                    );
                    0
                }
                Err(diags) => fail(&diags, &sources).max(2),
            }
        }
        Command::Stages => {
            print!("{}", flowline::help::listing(flowline::registry()));
            0
        }
        Command::Doc { name } => match flowline::help::doc(flowline::registry(), &name) {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(msg) => {
                eprintln!("{msg}");
                2
            }
        },
        Command::Fmt { file, write } => {
            let mut sources = SourceMap::new();
            let id = match flowline::load(&mut sources, &file) {
                Ok(id) => id,
                Err(d) => return fail(&[d], &sources).max(2),
            };
            let (program, diags) = flowline::parse(&sources, id);
            if !diags.is_empty() {
                return fail(&diags, &sources).max(2);
            }
            let text = flowline::syntax::format_program(&program, &sources.get(id).text);
            if write {
                if let Err(d) = flowline::exec::write_atomic(&file, text.as_bytes()) {
                    return fail(&[d], &sources);
                }
            } else {
                print!("{text}");
            }
            0
        }
        Command::Compare { runs, changed, csv, markdown } => match flowline::compare::compare(&runs, changed) {
            Ok(table) => {
                print!("{}", table.text());
                for (path, text) in [(csv, table.csv()), (markdown, table.markdown())] {
                    if let Some(path) = path
                        && let Err(e) = std::fs::write(&path, text)
                    {
                        eprintln!("error: cannot write {}: {e}", path.display());
                        return 1;
                    }
                }
                0
            }
            Err(msg) => {
                eprintln!("error: {msg}");
                2
            }
        },
        Command::Data { action: DataAction::Fetch { name, data_dir, from } } => {
            let Some(cat) = flowline::data::fetch::catalog(&name) else {
                let names: Vec<&str> = flowline::data::fetch::CATALOGS.iter().map(|c| c.name).collect();
                eprintln!("no downloadable dataset named `{name}`; available: {}", names.join(", "));
                if name == "notmnist" || name == "digits" {
                    eprintln!(
                        "`{name}` has no published checksum to verify against: place its files in the data directory by hand"
                    );
                }
                return 2;
            };
            match flowline::data::fetch::fetch(cat, &flowline::exec::data_dir(data_dir), from.as_deref()) {
                Ok(lines) => {
                    for l in lines {
                        println!("{l}");
                    }
                    0
                }
                Err(e) => {
                    eprintln!("error[R1002]: {e}");
                    1
                }
            }
        }
        Command::Test { files, accept, profile, device: d, data_dir } => {
            let mut code = 0;
            let data_dir = flowline::exec::data_dir(data_dir);
            for file in files {
                code = code.max(test_one(&file, accept, profile.as_deref(), device(d), &data_dir));
            }
            code
        }
    }
}

fn test_one(file: &Path, accept: bool, profile: Option<&str>, device: DeviceChoice, data_dir: &Path) -> i32 {
    let mut sources = SourceMap::new();
    let snap_path = snapshot::path_for(file);
    let old = std::fs::read_to_string(&snap_path).ok().map(|t| snapshot::parse(&t));
    let old = match old {
        Some(Err(e)) => {
            eprintln!("error[R1002]: the snapshot {} is malformed: {e}", snap_path.display());
            return 1;
        }
        Some(Ok(s)) => Some(s),
        None => None,
    };
    // The snapshot was taken under a profile: comparing under another would be meaningless.
    let profile = match (profile, old.as_ref().and_then(|s| s.profile.as_deref())) {
        (Some(p), _) => p.to_string(),
        (None, Some(recorded)) => recorded.to_string(),
        (None, None) => "smoke".to_string(),
    };
    if let Some(recorded) = old.as_ref().and_then(|s| s.profile.as_deref())
        && recorded != profile
        && !accept
    {
        eprintln!(
            "{}: the snapshot {} was taken under profile `{recorded}`, not `{profile}`; drop `--profile` or re-accept",
            file.display(),
            snap_path.display()
        );
        return 1;
    }
    let opts = CheckOptions { profile: Some(profile.clone()), ..Default::default() };
    let plan = match flowline::compile(&mut sources, file, &opts) {
        Ok(p) => p,
        Err(diags) => return fail(&diags, &sources),
    };
    let Ok(tmp) = tempfile::tempdir() else {
        eprintln!("cannot create a temporary folder");
        return 1;
    };
    let ropts = RunOptions {
        out: tmp.path().to_path_buf(),
        device,
        force: true,
        only: None,
        quiet: !std::io::stderr().is_terminal(),
        pipeline: file.display().to_string(),
        data_dir: data_dir.to_path_buf(),
        share_runs: false,
        command: std::env::args().collect(),
        jobs: 1,
        executor: Default::default(),
    };
    let report = match flowline::run(&plan, &ropts) {
        Ok(r) => r,
        Err(f) => return fail(&f.diags, &sources),
    };
    let current: std::collections::BTreeMap<String, f64> = flatten_metrics(&report).into_iter().collect();
    if accept {
        let snap = snapshot::accept(old.as_ref(), Some(profile.clone()), &current);
        let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let text = match snapshot::render(&snap, &name) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        if let Err(d) = flowline::exec::write_atomic(&snap_path, text.as_bytes()) {
            return fail(&[d], &sources);
        }
        println!("{}: accepted {} metrics into {}", file.display(), current.len(), snap_path.display());
        return 0;
    }
    let Some(snap) = old else {
        eprintln!(
            "{}: no snapshot at {}; run `flowline test --accept {}`",
            file.display(),
            snap_path.display(),
            file.display()
        );
        return 1;
    };
    let diff = snapshot::compare(&snap, &current);
    if diff.is_empty() {
        println!("{}: ok ({} metrics match)", file.display(), current.len());
        0
    } else {
        println!("{}: {} difference(s) from {}", file.display(), diff.len(), snap_path.display());
        for line in diff {
            println!("  {line}");
        }
        1
    }
}
