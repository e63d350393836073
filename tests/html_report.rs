//! report.html: self-contained, and rendered by a real headless Chromium (the distribution's
//! `chromium`; the browser checks skip with a printed reason where it is absent).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The first of the usual Chromium binaries on PATH.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|b| std::env::split_paths(&path).map(move |d| d.join(b)))
        .find(|p| p.is_file())
}

/// The page without the browser: every stage has a section, figures are inlined, nothing
/// is fetched from elsewhere.
fn check_page(html: &str, stages: &[String]) {
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<title>flowline: pipelines/"), "title");
    assert!(html.contains("<svg class=\"dag\""), "no stage graph");
    for s in stages {
        assert!(html.contains(&format!("id=\"stage-{s}\"")), "no section for `{s}`");
    }
    assert!(html.contains("<figure><svg"), "no inlined figure");
    for remote in ["src=\"http", "href=\"http", "<link", "<script", "url(http"] {
        assert!(!html.contains(remote), "the page fetches something: {remote}");
    }
}

/// Chromium's DOM of the page and a screenshot: the DOM has the title, a figure and a table
/// row; the screenshot is not blank and shows the graph's status colours.
fn check_in_browser(page: &Path, test: &str) {
    let Some(browser) = chromium() else {
        let why = format!("skipping {test}'s browser check: no chromium on PATH (Debian: apt-get install chromium)");
        println!("{why}");
        eprintln!("{why}");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let run = |extra: &[&str]| {
        let out = Command::new(&browser)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    };
    let dom = String::from_utf8_lossy(&run(&["--dump-dom"]).stdout).into_owned();
    assert!(dom.contains("<h1>flowline: pipelines/"), "no title in the rendered DOM");
    assert!(dom.contains("<figure><svg"), "no figure in the rendered DOM");
    assert!(dom.contains("<td>accuracy</td>") || dom.contains("<td>success_rate</td>"), "no metrics row");
    let shot = page.with_file_name("screenshot.png");
    run(&["--window-size=1280,1600", &format!("--screenshot={}", shot.display())]);
    let mut reader =
        png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap())).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1280, 1600));
    let bpp = info.color_type.samples();
    let px: Vec<&[u8]> = buf[..info.buffer_size()].chunks(bpp).collect();
    let ink = px.iter().filter(|p| p[..3].iter().any(|&v| v < 200)).count();
    assert!(ink > px.len() / 100, "the screenshot is nearly blank ({ink} dark pixels)");
    // The graph's boxes: cached (#c6e5f8) or executed (#b3e2d1) fills.
    let status = |c: [u8; 3]| px.iter().filter(|p| p[..3] == c).count();
    assert!(status([0xc6, 0xe5, 0xf8]) + status([0xb3, 0xe2, 0xd1]) > 2000, "no stage boxes in the screenshot");
}

fn run_and_check(pipeline: &str, test: &str) {
    let out = tempfile::tempdir().unwrap();
    let report = common::run_file(&common::root().join(pipeline), Some("smoke"), out.path()).unwrap();
    let stages: Vec<String> = report.stages.iter().map(|s| s.name.clone()).collect();
    let page = out.path().join("report.html");
    check_page(&std::fs::read_to_string(&page).unwrap(), &stages);
    check_in_browser(&page, test);
}

#[test]
fn quickstart_report_renders_in_a_browser() {
    run_and_check("pipelines/quickstart.flow", "quickstart_report_renders_in_a_browser");
}

#[test]
fn attacks_mnist_report_renders_in_a_browser_needs_shared_data() {
    let test = "attacks_mnist_report_renders_in_a_browser_needs_shared_data";
    if common::shared_data_or_skip(test).is_none() {
        return;
    }
    run_and_check("pipelines/attacks_mnist.flow", test);
}
