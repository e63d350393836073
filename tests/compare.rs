//! `flowline compare` on two runs of the quickstart (smoke profile) with different seeds.

mod common;

use std::process::Command;

#[test]
fn compare_two_quickstart_runs_with_different_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(common::root().join("pipelines/quickstart.flow")).unwrap();
    assert!(text.contains("\nseed 7\n"), "the quickstart sets seed 7");
    let mut runs = Vec::new();
    for seed in [7, 8] {
        let file = tmp.path().join(format!("quickstart_{seed}.flow"));
        std::fs::write(&file, text.replace("\nseed 7\n", &format!("\nseed {seed}\n"))).unwrap();
        let out = tmp.path().join(format!("seed{seed}"));
        common::run_file(&file, Some("smoke"), &out).unwrap();
        runs.push(out);
    }
    let table = flowline::compare::compare(&runs, false).unwrap();
    assert_eq!(table.runs.iter().map(|r| r.seed).collect::<Vec<_>>(), [Some(7), Some(8)]);
    let row = |name: &str| table.rows.iter().find(|r| r.0 == name).unwrap_or_else(|| panic!("no row {name}")).1.clone();
    let acc = row("score.accuracy");
    assert!(acc.iter().all(|v| v.is_some_and(|a| (0.5..=1.0).contains(&a))), "{acc:?}");
    // Data sizes are the same, the trained model's loss is not.
    assert_eq!(row("data.n")[0], row("data.n")[1]);
    assert_ne!(row("fit.final_loss")[0], row("fit.final_loss")[1]);

    // The command line: the table on stdout, CSV and Markdown files.
    let (csv, md) = (tmp.path().join("c.csv"), tmp.path().join("c.md"));
    let out = Command::new(env!("CARGO_BIN_EXE_flowline"))
        .arg("compare")
        .args(&runs)
        .arg("--changed")
        .arg("--csv")
        .arg(&csv)
        .arg("--markdown")
        .arg(&md)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("seed7: seed 7") && stdout.contains("fit.final_loss"), "{stdout}");
    assert!(!stdout.contains("data.n "), "--changed keeps only differing rows:\n{stdout}");
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(csv.starts_with("metric,seed7,seed8,seed8 - seed7,seed8 / seed7\n"), "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.split(',').count() == 5), "{csv}");
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("| metric | seed7 | seed8 |") && md.contains("|---|"), "{md}");

    let missing =
        Command::new(env!("CARGO_BIN_EXE_flowline")).arg("compare").arg(&runs[0]).arg(tmp.path()).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("report.yaml"));
}
