//! The built-ins of the language, one file per family. Each file declares signatures and
//! calls into the numerical library (`nn`, `data`, `plots`), which knows nothing of the language.

mod attack_outcome;
mod attack_reports;
mod attacks;
mod clamp;
mod data;
mod datasets;
mod evaluate;
mod layers;
mod load;
mod ode;
mod optim;
mod plots;
mod registry;
mod train;

pub use layers::layer_specs;
pub use optim::{optimizer_spec, schedule_spec};
pub use registry::{
    Builtin, Dflt, Meta, Param, Range, Sort, Stage, StaticCall, all, find, is_symbol, show_default, symbols,
};

/// `flowline stages`: every built-in, grouped by sort, with its signature and doc line.
pub fn listing() -> String {
    let mut out = String::new();
    for sort in Sort::ALL {
        out.push_str(&format!("{}s:\n", sort.name()));
        for b in all().iter().filter(|b| b.sort == sort) {
            out.push_str(&format!("  {:<48} {}\n", b.signature(), b.doc));
        }
    }
    let defs = crate::stdlib::defs();
    let mut modules: Vec<&str> = defs.iter().map(|d| d.module.as_str()).collect();
    modules.dedup();
    for m in modules {
        out.push_str(&format!("definitions in {m} (`use {m}`):\n"));
        for d in defs.iter().filter(|d| d.module == m) {
            out.push_str(&format!("  {:<48} {}\n", d.signature(), d.doc));
        }
    }
    out
}

/// `flowline doc` of a standard-library `def`.
fn def_doc(d: &crate::stdlib::StdDef) -> String {
    let mut out = format!("{} (def in {}; `use {}`)\n\n  {}\n\n{}\n", d.name, d.module, d.module, d.signature(), d.doc);
    if !d.params.is_empty() {
        out.push_str("\nparameters:\n");
        for (n, default) in &d.params {
            out.push_str(&format!("  {n:<14} (default: {default})\n"));
        }
    }
    out.push_str(&format!("\ndefinition:\n  {} = {}\n", d.signature(), d.body));
    out
}

/// `flowline doc NAME`.
pub fn doc(name: &str) -> Result<String, String> {
    if find(name).is_none()
        && let Some(d) = crate::stdlib::find_def(name)
    {
        return Ok(def_doc(&d));
    }
    let Some(b) = find(name) else {
        let defs = crate::stdlib::defs();
        let hint =
            crate::diag::did_you_mean(name, all().iter().map(|b| b.name).chain(defs.iter().map(|d| d.name.as_str())))
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
        return Err(format!("no built-in named `{name}`{hint}; `flowline stages` lists them"));
    };
    let mut out = format!("{} ({})\n\n  {}\n\n{}\n", b.name, b.sort.name(), b.signature(), b.doc);
    if !b.params.is_empty() {
        out.push_str("\nparameters:\n");
        for p in &b.params {
            let range = p.range.map(|r| format!(", {}", r.describe())).unwrap_or_default();
            out.push_str(&format!(
                "  {:<14} {} (default: {}{range})\n      {}\n",
                p.name,
                p.ty,
                show_default(&p.default),
                p.doc
            ));
        }
    }
    if let Some(s) = &b.stage {
        let fields = s.fields(&crate::check::Args::default());
        out.push_str(&format!("\nresult: {}\n", s.output()));
        if !fields.is_empty() {
            let names: Vec<String> = fields.iter().map(|(n, t)| format!("{n} ({t})")).collect();
            out.push_str(&format!("fields: {}\n", names.join(", ")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diag::SourceMap;

    fn checked(src: &str) -> crate::check::Checked {
        let mut sources = SourceMap::new();
        let id = sources.add("t.flow", None, src.to_string());
        crate::check::check(&mut sources, id, &crate::check::CheckOptions::default()).unwrap()
    }

    /// Every attack and every solver the language offers lowers, with its defaults, into the
    /// numerical library's config (no name falls through to another's).
    #[test]
    fn every_attack_and_solver_lowers_with_its_defaults() {
        for b in all().iter().filter(|b| b.sort == Sort::Attack) {
            let src = format!(
                "use std.models\nlet data = toy2d(\"moons\", n: 50)\n\
                 let fit = train(mlp(hidden: 4, classes: 2), data, epochs: 1)\n\
                 let adv = attack(fit, data, using: {}(), bounds: [-3, 3])\n",
                b.name
            );
            let c = checked(&src);
            let node = c.nodes.iter().find(|n| n.name == "adv").unwrap();
            let attack = attacks::attack_of(node.args.config("using").unwrap(), (-3.0, 3.0), 2);
            assert!(attack.is_ok(), "{}: {attack:?}", b.name);
        }
        for b in all().iter().filter(|b| b.sort == Sort::Solver) {
            let c = checked(&format!("let o = odeint(van_der_pol(), y0: [1.0, 0.0], t1: 1.0, solver: {}())\n", b.name));
            let opts = ode::solver_options(c.nodes[0].args.config("solver").unwrap()).unwrap();
            assert_eq!(opts.method.name(), b.name);
        }
    }

    /// Every sort of built-in is listed by `flowline stages`.
    #[test]
    fn the_listing_shows_every_builtin() {
        for (i, s) in Sort::ALL.iter().enumerate() {
            assert_eq!(s.index(), i, "Sort::ALL holds each sort once, in order");
        }
        let text = listing();
        for b in all() {
            assert!(text.contains(&format!("  {}(", b.name)) || text.contains(&format!("  {} ", b.name)), "{}", b.name);
        }
    }
}
