//! The standard library: `.flow` files embedded in the binary so that `use std.x` works
//! from any directory.

const MODULES: [(&str, &str); 1] = [("models", include_str!("../stdlib/models.flow"))];

pub fn get(name: &str) -> Option<&'static str> {
    MODULES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    MODULES.iter().map(|(n, _)| *n)
}
