//! A square grid over [lo, hi]^2 for 2-D densities: the cell centres to evaluate a density
//! at, and histograms of points, both row-major with the top row (largest y) first, as
//! images are drawn.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Square {
    pub lo: f64,
    pub hi: f64,
    pub side: usize,
}

impl Square {
    pub fn cell(&self) -> f64 {
        (self.hi - self.lo) / self.side as f64
    }
    /// The cell centres as (x, y) pairs, [side * side, 2] row-major.
    pub fn centres(&self) -> Vec<f32> {
        let (c, k) = (self.cell(), self.side);
        (0..k * k)
            .flat_map(|i| {
                let (row, col) = (i / k, i % k);
                [(self.lo + c * (col as f64 + 0.5)) as f32, (self.hi - c * (row as f64 + 0.5)) as f32]
            })
            .collect()
    }
    /// The fraction of the points (x, y pairs) in each cell; points outside are dropped.
    pub fn histogram(&self, xy: &[f32]) -> Vec<f64> {
        let (c, k) = (self.cell(), self.side);
        let mut h = vec![0.0; k * k];
        let n = (xy.len() / 2).max(1) as f64;
        for p in xy.chunks_exact(2) {
            let col = ((p[0] as f64 - self.lo) / c).floor();
            let row = ((self.hi - p[1] as f64) / c).floor();
            if (0.0..k as f64).contains(&col) && (0.0..k as f64).contains(&row) {
                h[row as usize * k + col as usize] += 1.0 / n;
            }
        }
        h
    }
    /// A square holding the points with a margin (a tenth of their extent each side).
    pub fn around(xy: &[f32], side: usize) -> Square {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in xy.iter().map(|v| *v as f64).filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() || hi <= lo {
            return Square { lo: -4.0, hi: 4.0, side };
        }
        let m = 0.1 * (hi - lo);
        Square { lo: lo - m, hi: hi + m, side }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centres_and_histograms_share_the_image_orientation() {
        let s = Square { lo: 0.0, hi: 2.0, side: 2 };
        // Top-left cell first: x in [0, 1], y in [1, 2].
        assert_eq!(s.centres(), vec![0.5, 1.5, 1.5, 1.5, 0.5, 0.5, 1.5, 0.5]);
        let h = s.histogram(&[0.2, 1.9, 0.3, 1.1, 1.7, 0.2, 5.0, 5.0]);
        assert_eq!(h, vec![0.5, 0.0, 0.0, 0.25]);
        assert_eq!(s.histogram(&s.centres()), vec![0.25; 4]);
    }

    #[test]
    fn the_square_around_points_has_a_margin() {
        let s = Square::around(&[-1.0, 0.0, 1.0, 3.0], 10);
        assert!((s.lo + 1.4).abs() < 1e-9 && (s.hi - 3.4).abs() < 1e-9);
        assert_eq!(Square::around(&[], 4), Square { lo: -4.0, hi: 4.0, side: 4 });
    }
}
