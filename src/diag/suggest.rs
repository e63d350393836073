//! "Did you mean" by edit distance.

/// The closest candidate within an edit distance that scales with the word's length.
pub fn did_you_mean<'a, I>(word: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)))
        .map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_words_only() {
        let names = ["moons", "circles", "rings"];
        assert_eq!(did_you_mean("moonz", names), Some("moons".into()));
        assert_eq!(did_you_mean("xyzzy", names), None);
        assert_eq!(did_you_mean("ring", names), Some("rings".into()));
    }
}
