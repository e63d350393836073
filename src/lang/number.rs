//! Numbers as a reader wants them on the console and in labels.

/// Integers as integers, other values to six significant digits, in scientific notation
/// when very small or very large.
pub fn show_number(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let a = x.abs();
    if !(1e-4..1e6).contains(&a) {
        // `{:e}` gives the shortest form; six significant digits at most.
        let s = format!("{:.5e}", x);
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        return format!("{mantissa}e{exp}");
    }
    let digits = 5 - a.log10().floor() as i32;
    let s = format!("{:.*}", digits.max(0) as usize, x);
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_as_integers_or_to_six_significant_digits() {
        let cases = [
            (1000.0, "1000"),
            (0.0, "0"),
            (-3.0, "-3"),
            (2.35e-8, "2.35e-8"),
            (0.000123456789, "0.000123457"),
            (0.998, "0.998"),
            (1.37421234, "1.37421"),
            (123456.7, "123457"),
            (1234567.5, "1.23457e6"),
            (0.5, "0.5"),
            (f64::INFINITY, "inf"),
            (f64::NAN, "nan"),
            (-0.25, "-0.25"),
        ];
        for (x, want) in cases {
            assert_eq!(show_number(x), want, "{x}");
        }
    }
}
