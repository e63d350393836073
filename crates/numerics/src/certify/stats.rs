//! The statistics certification rests on: the standard normal's CDF and quantile, the
//! one-sided Clopper-Pearson lower confidence bound of a binomial proportion, and the
//! two-sided binomial test against 1/2 (randomized smoothing's abstention rule). statrs
//! supplies the special functions.

use statrs::distribution::{Beta, ContinuousCDF, Normal};
use statrs::function::beta::beta_reg;

fn standard() -> Normal {
    Normal::standard()
}

/// Phi(x).
pub fn normal_cdf(x: f64) -> f64 {
    standard().cdf(x)
}

/// Phi^-1(p), for p in (0, 1); -inf and inf at the ends.
pub fn normal_quantile(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    standard().inverse_cdf(p)
}

/// The one-sided (1 - alpha) Clopper-Pearson lower bound on p from `k` successes in `n`
/// trials: the alpha quantile of Beta(k, n - k + 1), and 0 when k = 0.
pub fn clopper_pearson_lower(k: u64, n: u64, alpha: f64) -> f64 {
    if k == 0 || n == 0 {
        return 0.0;
    }
    if k == n {
        // The quantile of Beta(n, 1) in closed form, exact where the generic inversion
        // loses digits near 1.
        return alpha.powf(1.0 / n as f64);
    }
    match Beta::new(k as f64, (n - k + 1) as f64) {
        Ok(b) => b.inverse_cdf(alpha),
        Err(_) => 0.0,
    }
}

/// P(X <= k) for X ~ Binomial(n, 1/2).
fn binomial_half_cdf(k: u64, n: u64) -> f64 {
    if k >= n {
        return 1.0;
    }
    // P(X <= k) = I_{1/2}(n - k, k + 1).
    beta_reg((n - k) as f64, (k + 1) as f64, 0.5)
}

/// The two-sided p-value of `k` successes in `n` trials against p = 1/2 (the distribution
/// is symmetric, so twice the smaller tail, capped at 1).
pub fn binomial_test_half(k: u64, n: u64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let low = k.min(n - k);
    (2.0 * binomial_half_cdf(low, n)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) {
        assert!((a - b).abs() <= tol, "{a} vs {b}");
    }

    /// Reference values from scipy.stats 1.x (norm.ppf, norm.cdf, beta.ppf, binomtest).
    #[test]
    fn normal_quantiles_match_tables() {
        close(normal_quantile(0.975), 1.959963984540054, 1e-12);
        close(normal_quantile(0.999), 3.090232306167813, 1e-12);
        close(normal_quantile(0.5), 0.0, 1e-15);
        close(normal_quantile(0.1), -1.2815515655446004, 1e-12);
        // statrs computes Phi through erfc to about 1e-11.
        close(normal_cdf(1.0), 0.8413447460685429, 1e-10);
        close(normal_cdf(normal_quantile(0.9999)), 0.9999, 1e-10);
        assert_eq!(normal_quantile(0.0), f64::NEG_INFINITY);
        assert_eq!(normal_quantile(1.0), f64::INFINITY);
    }

    #[test]
    fn clopper_pearson_bounds_match_known_values() {
        // statsmodels proportion_confint(50, 100, alpha=0.05, method="beta") = (0.39832, 0.60168):
        // the two-sided 95% lower end is the one-sided 97.5% bound.
        close(clopper_pearson_lower(50, 100, 0.025), 0.39832112950330095, 1e-10);
        // All successes: alpha^(1/n).
        close(clopper_pearson_lower(100_000, 100_000, 0.001), 0.001f64.powf(1e-5), 1e-15);
        close(clopper_pearson_lower(10, 10, 0.05), 0.7411344491069477, 1e-12);
        assert_eq!(clopper_pearson_lower(0, 10, 0.05), 0.0);
        // scipy.stats.beta.ppf(0.001, 99000, 1001)
        close(clopper_pearson_lower(99_000, 100_000, 0.001), 0.9889893403774748, 1e-9);
        // The bound rises with k and falls as alpha shrinks.
        assert!(clopper_pearson_lower(60, 100, 0.01) > clopper_pearson_lower(50, 100, 0.01));
        assert!(clopper_pearson_lower(60, 100, 0.001) < clopper_pearson_lower(60, 100, 0.01));
    }

    #[test]
    fn binomial_test_matches_exact_sums() {
        // binomtest(7, 10, 0.5).pvalue = 0.34375 (= 2 * 176/1024).
        close(binomial_test_half(7, 10), 0.34375, 1e-12);
        close(binomial_test_half(3, 10), 0.34375, 1e-12);
        close(binomial_test_half(10, 10), 2.0 / 1024.0, 1e-15);
        close(binomial_test_half(5, 10), 1.0, 1e-15);
        // binomtest(60, 100).pvalue = 0.056887933640980...
        close(binomial_test_half(60, 100), 0.05688793364098089, 1e-10);
    }
}
