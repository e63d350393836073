//! Random and mutated pipelines fed to parse + check + plan must never panic.
//! CI runs a few thousand cases; `FLOWLINE_FUZZ_CASES=100000 cargo test --release --test
//! fuzz_check` is the long run.

mod common;

use flowline::diag::SourceMap;
use flowline::rng::Rng;
use std::path::PathBuf;

const TOKENS: [&str; 44] = [
    "let ",
    "def ",
    "use ",
    "seed ",
    "report ",
    "profile ",
    "=",
    ":",
    ",",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "|>",
    "+",
    "-",
    "*",
    "/",
    ".",
    "\"",
    "#",
    "\n",
    " ",
    "0",
    "1e-5",
    "99999999999999999999",
    "1e999",
    "x",
    "data",
    "fit",
    "train",
    "toy2d",
    "linear",
    "relu",
    "none",
    "true",
    "\"moons\"",
    "std.models",
    "é",
    "\\",
    "mlp()",
    "evaluate(fit, data)",
];

fn corpus() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for dir in ["pipelines", "stdlib", "tests/errors"] {
        for e in std::fs::read_dir(common::root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "flow") {
                let text = std::fs::read_to_string(&p).unwrap();
                out.push((p, text));
            }
        }
    }
    out
}

fn boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn mutate(text: &str, rng: &mut Rng) -> String {
    let mut s = text.to_string();
    for _ in 0..1 + rng.below(4) {
        let a = boundary(&s, rng.below(s.len() + 1));
        let b = boundary(&s, a + rng.below(12));
        match rng.below(6) {
            0 => s.replace_range(a..b, ""),
            1 => s.insert_str(a, TOKENS[rng.below(TOKENS.len())]),
            2 => {
                let piece = s[a..b].to_string();
                s.insert_str(b, &piece);
            }
            3 => s.truncate(a),
            4 => s.replace_range(a..b, TOKENS[rng.below(TOKENS.len())]),
            _ => {
                let c = char::from_u32(rng.below(0x250) as u32).unwrap_or('?');
                s.insert(a, c);
            }
        }
    }
    s
}

fn soup(rng: &mut Rng) -> String {
    (0..rng.below(60)).map(|_| TOKENS[rng.below(TOKENS.len())]).collect()
}

#[test]
fn check_never_panics_on_random_or_mutated_input() {
    let cases: usize = std::env::var("FLOWLINE_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let corpus = corpus();
    let mut rng = Rng::new(2026);
    let mut diagnosed = 0;
    for i in 0..cases {
        let (path, text) = if i % 5 == 4 {
            (corpus[0].0.clone(), soup(&mut rng))
        } else {
            let (p, t) = &corpus[rng.below(corpus.len())];
            (p.clone(), mutate(t, &mut rng))
        };
        let result = std::panic::catch_unwind(|| {
            let mut sources = SourceMap::new();
            let id = sources.add(path.display().to_string(), Some(&path), text.clone());
            let sets = vec!["fit.iters=3".to_string()];
            let checked = flowline::check::check_all_profiles(flowline::registry(), &mut sources, id, &sets, &[])
                .and_then(flowline::plan);
            if let Err(d) = &checked {
                // Rendering must not panic either.
                let _ = flowline::diag::render_all(d, &sources, 100);
            }
            checked.is_err()
        });
        match result {
            Ok(err) => diagnosed += err as usize,
            Err(_) => panic!("case {i} panicked on input:\n{text}"),
        }
    }
    eprintln!("fuzz: {cases} cases, {diagnosed} with diagnostics");
    assert!(diagnosed > cases / 2, "mutations should mostly be caught");
}
