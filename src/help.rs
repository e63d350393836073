//! `flowline stages` and `flowline doc`: the registry and the standard library, documented
//! from their own signatures and comments.

use crate::lang::{Args, Registry, Role, Ty, fields, show_default};
use crate::stdlib::{self, StdDef};

/// `flowline stages`: every built-in under its heading (stages, then one per config kind),
/// with its signature and doc line, then the standard library's definitions.
pub fn listing(reg: &Registry) -> String {
    let mut out = String::new();
    for heading in reg.headings() {
        out.push_str(&format!("{heading}:\n"));
        for b in reg.all().iter().filter(|b| b.heading() == heading) {
            out.push_str(&format!("  {:<48} {}\n", b.signature(), b.doc));
        }
    }
    out.push_str("kinds of values (a parameter of a kind also takes its subkinds):\n");
    for k in reg.kinds() {
        let supers: Vec<&str> = k.supers.iter().map(|s| s.name).collect();
        let also = if supers.is_empty() { String::new() } else { format!(" (is a {})", supers.join(", ")) };
        out.push_str(&format!("  {:<14} {}{also}\n", k.name, k.describe));
    }
    let defs = stdlib::defs();
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
fn def_doc(d: &StdDef) -> String {
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
pub fn doc(reg: &Registry, name: &str) -> Result<String, String> {
    if reg.find(name).is_none()
        && let Some(d) = stdlib::find_def(name)
    {
        return Ok(def_doc(&d));
    }
    let Some(b) = reg.find(name) else {
        let defs = stdlib::defs();
        let hint = crate::diag::did_you_mean(
            name,
            reg.all().iter().map(|b| b.name).chain(defs.iter().map(|d| d.name.as_str())),
        )
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default();
        return Err(format!("no built-in named `{name}`{hint}; `flowline stages` lists them"));
    };
    let sort = match b.config_kind().map(|k| &k.role) {
        Some(Role::Config { noun, .. }) => noun,
        _ => "stage",
    };
    let mut out = format!("{} ({sort})\n\n  {}\n\n{}\n", b.name, b.signature(), b.doc);
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
    if let Some(s) = b.as_stage() {
        let fields = fields(s, &Args::default());
        out.push_str(&format!("\nresult: {}\n", Ty::Kind(s.output())));
        if !fields.is_empty() {
            let names: Vec<String> = fields.iter().map(|(n, t)| format!("{n} ({t})")).collect();
            out.push_str(&format!("fields: {}\n", names.join(", ")));
        }
    }
    Ok(out)
}
