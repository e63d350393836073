//! Histograms of several sets' scores on shared bins, as densities (each integrates to 1),
//! so that sets of different sizes overlay on one figure.

/// Equal-width bins over [lo, hi] and each set's density per bin.
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    pub lo: f64,
    pub hi: f64,
    /// Per set, the density of each bin: count / (n width).
    pub densities: Vec<Vec<f64>>,
}

impl Bins {
    pub fn width(&self) -> f64 {
        let n = self.densities.first().map_or(1, Vec::len).max(1);
        (self.hi - self.lo) / n as f64
    }

    /// Each bin's edges as a step outline: x and y of the corners, ready for a line plot.
    pub fn outline(&self, set: usize) -> (Vec<f64>, Vec<f64>) {
        let w = self.width();
        let (mut xs, mut ys) = (vec![self.lo], vec![0.0]);
        for (k, d) in self.densities[set].iter().enumerate() {
            let left = self.lo + k as f64 * w;
            xs.extend([left, left + w]);
            ys.extend([*d, *d]);
        }
        xs.push(self.hi);
        ys.push(0.0);
        (xs, ys)
    }
}

/// `bins` equal-width bins over the finite scores of all `sets` within [lo, hi] (default:
/// their range); values outside it are not counted (a density over the range shown).
pub fn density_histogram(sets: &[&[f64]], bins: usize, range: Option<(f64, f64)>) -> Bins {
    let finite = || sets.iter().flat_map(|s| s.iter().copied()).filter(|v| v.is_finite());
    let (mut lo, mut hi) = range
        .unwrap_or_else(|| finite().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v))));
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if hi <= lo {
        (lo, hi) = (lo - 0.5, lo + 0.5);
    }
    let bins = bins.max(1);
    let w = (hi - lo) / bins as f64;
    let densities = sets
        .iter()
        .map(|s| {
            let mut counts = vec![0usize; bins];
            for v in s.iter().filter(|v| v.is_finite() && **v >= lo && **v <= hi) {
                counts[(((v - lo) / w) as usize).min(bins - 1)] += 1;
            }
            let n = s.len().max(1) as f64;
            counts.iter().map(|c| *c as f64 / (n * w)).collect()
        })
        .collect();
    Bins { lo, hi, densities }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each set's density integrates to one over its range; the counts land in the right bins.
    #[test]
    fn densities_integrate_to_one_and_bin_correctly() {
        let a = [0.0, 0.1, 0.2, 0.9, 1.0];
        let b = [0.5, 0.55];
        let h = density_histogram(&[&a, &b], 4, None);
        assert_eq!((h.lo, h.hi), (0.0, 1.0));
        for d in &h.densities {
            assert!((d.iter().sum::<f64>() * h.width() - 1.0).abs() < 1e-12);
        }
        // Bins of width 0.25: a has 3 in the first, 0, 0, 2 in the last (1.0 closes it).
        assert_eq!(h.densities[0], vec![3.0 / 1.25, 0.0, 0.0, 2.0 / 1.25]);
        assert_eq!(h.densities[1], vec![0.0, 0.0, 2.0 / 0.5, 0.0]);
        let (xs, ys) = h.outline(1);
        assert_eq!(xs.len(), ys.len());
        assert_eq!((xs[0], *xs.last().unwrap()), (0.0, 1.0));
    }

    #[test]
    fn a_constant_set_gets_a_unit_range() {
        let h = density_histogram(&[&[3.0, 3.0]], 2, None);
        assert_eq!((h.lo, h.hi), (2.5, 3.5));
        assert!((h.densities[0].iter().sum::<f64>() * h.width() - 1.0).abs() < 1e-12);
    }
}
