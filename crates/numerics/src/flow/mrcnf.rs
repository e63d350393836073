//! Multi-resolution CNFs (Voleti, Finlay, Oberman & Pal 2021): an image is split by
//! `resolution::split` into ever coarser images and the details between them; one CNF
//! models the coarsest image (after the logit transform), and at every finer scale a CNF
//! models the details conditioned on the coarse image (its channels concatenated to the
//! field's input). The split has unit Jacobian determinant, so
//! log p(x) = log p(x_coarsest) + sum_s log p(details_s | coarse_s) exactly. Sampling runs
//! coarse to fine: draw the coarsest image, then each scale's details given it, and merge.
//!
//! Each scale's base is a unit normal. (The reference code scales each scale's base by a
//! std and ends its chain with the same affine scaling, whose log-determinant cancels it:
//! the likelihood is that of a unit normal at the CNFs' output.)

use super::chain::{BlockSums, Multiscale, conv_field_specs, scales_fit};
use super::cnf::{Cnf, standard_normal_log_density};
use super::conditioned::Conditioned;
use super::count::VjpCounter;
use super::field::{TangentField, TimeNet};
use super::image::{logit, logit_inverse};
use super::model::{AdjointGradients, FlowModel, Likelihood};
use super::resolution::{merge, pyramid_shapes, split};
use crate::ode::{Failure, Options, SolveError, Stats};
use crate::rng::Rng;
use candle_core::{DType, Device, Tensor, Var};
use std::collections::HashMap;

/// One scale's flow: its blocks in order.
pub struct ScaleFlow {
    pub blocks: Vec<TimeNet>,
}

pub struct Mrcnf {
    /// The finest images, [c, h, w].
    pub shape: [usize; 3],
    /// The layout (`Multiscale`'s fields; the reference code's defaults are 2 blocks per
    /// scale, concat_conv2d 64-64-64 with softplus, 3x3 kernels, logit alpha 0.05).
    pub layout: Multiscale,
    /// The coarsest image's flow, then the details' flows from coarse to fine.
    pub scales: Vec<ScaleFlow>,
}

/// Per example and per scale, log p of that scale's part (coarsest first), with the
/// whole likelihood.
pub struct ScaleTerms {
    pub likelihood: Likelihood,
    /// [n] each: log p(coarsest) (with the logit's log-determinant), then
    /// log p(details_s | coarse_s) from coarse to fine.
    pub per_scale: Vec<Tensor>,
}

type Block<'f> = Cnf<&'f dyn TangentField>;

impl Mrcnf {
    /// Fresh parameters for images `shape`.
    pub fn new(shape: &[usize], m: &Multiscale, rng: &mut Rng, dtype: DType, dev: &Device) -> Result<Self, String> {
        scales_fit(shape, m.scales)?;
        let shape = [shape[0], shape[1], shape[2]];
        let c = shape[0];
        let shapes = pyramid_shapes(shape, m.scales);
        let mut scales = Vec::with_capacity(m.scales);
        for s in 0..m.scales {
            // The image this scale completes: the coarsest for s = 0, else one finer.
            let [_, h, w] = shapes[m.scales - 1 - s];
            let (state, input) = if s == 0 { (c, c) } else { (3 * c, 4 * c) };
            let (h2, w2) = if s == 0 { (h, w) } else { (h / 2, w / 2) };
            let specs = conv_field_specs(state, &m.hidden, m.kernel, m.act);
            let mut blocks = Vec::with_capacity(m.blocks);
            for _ in 0..m.blocks.max(1) {
                blocks.push(TimeNet::init_between(&specs, &[input, h2, w2], &[state, h2, w2], rng, dtype, dev)?);
            }
            scales.push(ScaleFlow { blocks });
        }
        Ok(Mrcnf { shape, layout: m.clone(), scales })
    }

    /// Every parameter by name: `scale.<s>.block.<k>.field.<spec>.<name>`, s = 0 the coarsest.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let mut out = Vec::new();
        for (s, scale) in self.scales.iter().enumerate() {
            for (k, b) in scale.blocks.iter().enumerate() {
                for (n, v) in b.named_vars() {
                    out.push((format!("scale.{s}.block.{k}.{n}"), v));
                }
            }
        }
        out
    }

    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        self.named_vars().into_iter().map(|(n, v)| (n, v.as_tensor().clone())).collect()
    }

    /// Sets every parameter from `tensors` (as `named_tensors` names them).
    pub fn set_tensors(&self, tensors: &HashMap<String, Tensor>) -> Result<(), String> {
        super::chain::set_named(&self.named_vars(), tensors)
    }

    pub fn dim(&self) -> usize {
        self.shape.iter().product()
    }

    /// The images' shapes from the coarsest to the finest.
    pub fn resolutions(&self) -> Vec<[usize; 3]> {
        let mut s = pyramid_shapes(self.shape, self.layout.scales);
        s.reverse();
        s
    }

    fn cnf<'f>(&self, field: &'f dyn TangentField) -> Block<'f> {
        Cnf { field, t0: self.layout.t0, t1: self.layout.t1, trace: self.layout.trace }
    }

    /// `f` of the block whose field is `net`, conditioned on the image `cond` where given
    /// (the details' scales).
    fn on_block<T>(&self, net: &TimeNet, cond: Option<&Tensor>, f: impl FnOnce(&Block) -> T) -> T {
        match cond {
            None => f(&self.cnf(net)),
            Some(c) => f(&self.cnf(&Conditioned { net, cond: c.clone() })),
        }
    }

    /// x [n, c h w] in [0, 1] through every scale, each block's likelihood from `block`.
    /// `z` holds the base points of the scales, coarsest first (what `decode` takes).
    pub fn walk(
        &self,
        x: &Tensor,
        mut block: impl FnMut(&Block, &Tensor) -> Result<Likelihood, SolveError>,
    ) -> Result<ScaleTerms, SolveError> {
        let fail = |e| SolveError::tensor(e, 0.0);
        let shapes = pyramid_shapes(self.shape, self.layout.scales);
        // images[k]: the image at shapes[k] (finest first); details[k] what splits images[k].
        let mut images = vec![x.clone()];
        let mut details = Vec::new();
        for shape in &shapes[..shapes.len() - 1] {
            let (a, d) = split(images.last().expect("one image at least"), *shape).map_err(fail)?;
            images.push(a);
            details.push(d);
        }
        let n = x.dim(0).map_err(fail)?;
        let zeros = Tensor::zeros(n, x.dtype(), x.device()).map_err(fail)?;
        let mut sums = BlockSums::new(&zeros);
        let (mut per_scale, mut zs) = (Vec::new(), Vec::new());
        let last = images.len() - 1;
        for (s, scale) in self.scales.iter().enumerate() {
            let (mut z, cond, mut log_p) = if s == 0 {
                let (y, logdet) = logit(&images[last], self.layout.alpha).map_err(fail)?;
                (y, None, logdet)
            } else {
                let k = last - s;
                (details[k].clone(), Some(&images[k + 1]), zeros.clone())
            };
            for net in &scale.blocks {
                let l = self.on_block(net, cond, |cnf| block(cnf, &z))?;
                z = sums.add(&mut log_p, l, self.layout.t1)?;
            }
            log_p = (log_p + standard_normal_log_density(&z).map_err(fail)?).map_err(fail)?;
            per_scale.push(log_p);
            zs.push(z);
        }
        let mut log_p = per_scale[0].clone();
        for p in &per_scale[1..] {
            log_p = (log_p + p).map_err(fail)?;
        }
        let z = Tensor::cat(&zs, 1).map_err(fail)?;
        Ok(ScaleTerms { likelihood: sums.likelihood(log_p, z), per_scale })
    }

    /// log p(x) and the per-scale terms outside the graph, with the exact trace or each
    /// block's own estimator (draws from `rng`).
    pub fn log_density(
        &self,
        x: &Tensor,
        opts: &Options,
        rng: &mut Rng,
        exact: bool,
    ) -> Result<ScaleTerms, SolveError> {
        self.walk(&x.detach(), |cnf, z| cnf.log_density(z, opts, rng, exact))
    }

    /// n samples at every resolution, coarsest first: base draws decoded.
    pub fn sample(
        &self,
        n: usize,
        opts: &Options,
        rng: &mut Rng,
        dtype: DType,
        dev: &Device,
    ) -> Result<(Vec<Tensor>, Stats), SolveError> {
        self.decode(&super::chain::base_draws(n, self.dim(), rng, dtype, dev)?, opts)
    }

    /// Images at every resolution (coarsest first) from base points [n, D] laid out as
    /// `walk`'s `z`.
    pub fn decode(&self, base: &Tensor, opts: &Options) -> Result<(Vec<Tensor>, Stats), SolveError> {
        let fail = |e| SolveError::tensor(e, 0.0);
        let resolutions = self.resolutions();
        let c = self.shape[0];
        let mut stats = Stats::default();
        let mut images: Vec<Tensor> = Vec::new();
        let mut at = 0;
        for (s, scale) in self.scales.iter().enumerate() {
            let [_, h, w] = resolutions[s];
            let size = if s == 0 { c * h * w } else { 3 * c * h * w / 4 };
            let mut z = base.narrow(1, at, size).map_err(fail)?;
            at += size;
            let cond = images.last().cloned();
            for net in scale.blocks.iter().rev() {
                let (y, st) = self.on_block(net, cond.as_ref(), |cnf| cnf.sample(&z, opts))?;
                super::chain::add_stats(&mut stats, &st);
                z = y;
            }
            let image = match &cond {
                None => logit_inverse(&z, self.layout.alpha).map_err(fail)?,
                Some(img) => merge(img, &z, resolutions[s]).map_err(fail)?,
            };
            images.push(image);
        }
        Ok((images, stats))
    }
}

impl FlowModel for Mrcnf {
    fn vars(&self) -> Vec<Var> {
        self.scales.iter().flat_map(|s| s.blocks.iter().flat_map(|b| b.vars())).collect()
    }
    fn log_likelihood_counted(
        &self,
        x: &Tensor,
        opts: &Options,
        rng: &mut Rng,
        vjps: Option<&VjpCounter>,
    ) -> Result<Likelihood, SolveError> {
        Ok(self.walk(x, |cnf, z| cnf.log_likelihood_counted(z, opts, rng, vjps))?.likelihood)
    }
    /// Not built: a scale of several blocks is a chain, whose blocks' adjoints would start
    /// from the gradient the blocks after them pass back (as for `FlowChain`).
    fn adjoint_loss_gradients(
        &self,
        _x: &Tensor,
        _weights: (f64, f64),
        _opts: &Options,
        _rng: &mut Rng,
    ) -> Result<AdjointGradients, SolveError> {
        Err(SolveError {
            failure: Failure::Tensor("the adjoint method is built for single CNFs, not multi-resolution flows".into()),
            t: 0.0,
            stats: Stats::default(),
            partial: Vec::new(),
            last: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Trace;
    use crate::ode::Method;

    fn layout(scales: usize) -> Multiscale {
        Multiscale { scales, hidden: vec![4], alpha: 0.05, ..Multiscale::mnist(0.5, Trace::Exact) }
    }

    fn opts() -> Options {
        Options { rtol: 1e-9, atol: 1e-9, ..Options::new(Method::Dopri5) }
    }

    fn images(n: usize, d: usize, seed: u64) -> Tensor {
        let mut rng = Rng::new(seed);
        let v: Vec<f64> = (0..n * d).map(|_| 0.05 + 0.9 * rng.uniform()).collect();
        Tensor::from_vec(v, (n, d), &Device::Cpu).unwrap()
    }

    fn flat(t: &Tensor) -> Vec<f64> {
        t.flatten_all().unwrap().to_vec1::<f64>().unwrap()
    }

    /// With every weight zero the fields vanish and the flow is the identity: log p(x) is
    /// the logit's log-determinant plus the unit-normal log-densities of logit(coarsest) and
    /// of the details, computed here from the pixels by hand.
    #[test]
    fn a_still_flow_has_the_closed_form_likelihood() {
        let m = Mrcnf::new(&[1, 4, 4], &layout(3), &mut Rng::new(1), DType::F64, &Device::Cpu).unwrap();
        for (_, v) in m.named_vars() {
            v.set(&v.as_tensor().zeros_like().unwrap()).unwrap();
        }
        let x = images(2, 16, 2);
        let got = flat(&m.log_density(&x, &opts(), &mut Rng::new(0), true).unwrap().likelihood.log_p);
        let c = 4f64.powf(1.0 / 3.0);
        let gauss = |v: f64| -0.5 * v * v - 0.5 * (2.0 * std::f64::consts::PI).ln();
        for (i, g) in got.iter().enumerate() {
            let p = &flat(&x)[i * 16..(i + 1) * 16];
            let px = |r: usize, col: usize| p[r * 4 + col];
            let mut want = 0.0;
            // 4x4 -> 2x2 details.
            let mut coarse = [[0.0; 2]; 2];
            for (r, row) in coarse.iter_mut().enumerate() {
                for (col, cell) in row.iter_mut().enumerate() {
                    let (x1, x2, x3, x4) = (
                        px(2 * r, 2 * col),
                        px(2 * r, 2 * col + 1),
                        px(2 * r + 1, 2 * col),
                        px(2 * r + 1, 2 * col + 1),
                    );
                    *cell = (x1 + x2 + x3 + x4) / 4.0;
                    for d in [(x1 + x2 - x3 - x4) / c, (x1 - x2 + x3 - x4) / c, (x1 - x2 - x3 + x4) / c] {
                        want += gauss(d);
                    }
                }
            }
            // 2x2 -> 1x1 details; the coarsest 1x1 after the logit.
            let (x1, x2, x3, x4) = (coarse[0][0], coarse[0][1], coarse[1][0], coarse[1][1]);
            for d in [(x1 + x2 - x3 - x4) / c, (x1 - x2 + x3 - x4) / c, (x1 - x2 - x3 + x4) / c] {
                want += gauss(d);
            }
            let top = (x1 + x2 + x3 + x4) / 4.0;
            let s = 0.05 + 0.9 * top;
            want += gauss((s / (1.0 - s)).ln()) + (0.9 / (s * (1.0 - s))).ln();
            assert!((g - want).abs() < 1e-9, "example {i}: {g} vs {want}");
        }
    }

    /// log p(x) is the sum of the per-scale terms, and each term is what that scale's
    /// blocks give on their own: the coarsest image's flow (after the logit) and the
    /// details' flows conditioned on the coarse image, run here block by block.
    #[test]
    fn the_likelihood_is_the_sum_of_the_scales() {
        let m = Mrcnf::new(&[1, 4, 4], &layout(2), &mut Rng::new(3), DType::F64, &Device::Cpu).unwrap();
        let x = images(3, 16, 4);
        let terms = m.log_density(&x, &opts(), &mut Rng::new(0), true).unwrap();
        let total = flat(&terms.likelihood.log_p);
        let parts: Vec<Vec<f64>> = terms.per_scale.iter().map(flat).collect();
        let (coarse, details) = split(&x, [1, 4, 4]).unwrap();
        let run = |s: usize, start: &Tensor, cond: Option<&Tensor>| {
            let mut z = start.clone();
            let mut delta = vec![0.0; 3];
            for net in &m.scales[s].blocks {
                let l = match cond {
                    None => m.cnf(net).log_density(&z, &opts(), &mut Rng::new(0), true).unwrap(),
                    Some(c) => {
                        let f = Conditioned { net, cond: c.clone() };
                        m.cnf(&f).log_density(&z, &opts(), &mut Rng::new(0), true).unwrap()
                    }
                };
                for (d, v) in delta.iter_mut().zip(flat(&l.end[1])) {
                    *d += v;
                }
                z = l.z;
            }
            let base = flat(&standard_normal_log_density(&z).unwrap());
            base.iter().zip(&delta).map(|(b, d)| b - d).collect::<Vec<f64>>()
        };
        let (y, logdet) = logit(&coarse, 0.05).unwrap();
        let want0: Vec<f64> = run(0, &y, None).iter().zip(flat(&logdet)).map(|(a, b)| a + b).collect();
        let want1 = run(1, &details, Some(&coarse));
        for i in 0..3 {
            assert!((parts[0][i] - want0[i]).abs() < 1e-10, "{} vs {}", parts[0][i], want0[i]);
            assert!((parts[1][i] - want1[i]).abs() < 1e-10, "{} vs {}", parts[1][i], want1[i]);
            assert!((total[i] - parts[0][i] - parts[1][i]).abs() < 1e-10);
        }
    }

    /// Samples come at every resolution with the right shapes; each finer image's block
    /// means are the coarser image (the details only add detail); the coarsest lies in
    /// [0, 1] (the logit's inverse); and decoding a likelihood pass's base points gives
    /// the data back.
    #[test]
    fn samples_are_consistent_across_resolutions_and_invert_the_likelihood() {
        let m = Mrcnf::new(&[2, 4, 8], &layout(3), &mut Rng::new(5), DType::F64, &Device::Cpu).unwrap();
        let (images_out, _) = m.sample(4, &opts(), &mut Rng::new(6), DType::F64, &Device::Cpu).unwrap();
        let shapes = m.resolutions();
        assert_eq!(shapes, vec![[2, 1, 2], [2, 2, 4], [2, 4, 8]]);
        for (img, s) in images_out.iter().zip(&shapes) {
            assert_eq!(img.dims(), &[4, s.iter().product::<usize>()]);
        }
        assert!(flat(&images_out[0]).iter().all(|v| (0.0..=1.0).contains(v)));
        for k in 1..3 {
            let (coarse, _) = split(&images_out[k], shapes[k]).unwrap();
            for (a, b) in flat(&coarse).iter().zip(flat(&images_out[k - 1])) {
                assert!((a - b).abs() < 1e-12, "scale {k}: {a} vs {b}");
            }
        }
        let x = images(3, 64, 7);
        let z = m.log_density(&x, &opts(), &mut Rng::new(0), true).unwrap().likelihood.z;
        let (back, _) = m.decode(&z, &opts()).unwrap();
        for (a, b) in flat(back.last().unwrap()).iter().zip(flat(&x)) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
    }

    #[test]
    fn layouts_that_do_not_fit_are_refused() {
        assert!(scales_fit(&[1, 28, 28], 3).is_ok());
        assert!(scales_fit(&[1, 28, 28], 4).unwrap_err().contains("not divisible by 8"));
        assert!(scales_fit(&[784], 2).unwrap_err().contains("images"));
        assert!(scales_fit(&[1, 4, 4], 0).is_err());
        let m = Multiscale { scales: 3, ..layout(3) };
        let e = Mrcnf::new(&[1, 6, 6], &m, &mut Rng::new(0), DType::F64, &Device::Cpu).err().unwrap();
        assert!(e.contains("not divisible by 4"), "{e}");
    }
}
