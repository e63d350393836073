//! Adam and AdamW updates in place, three passes per parameter (first moment, second
//! moment, parameter) where the composed version runs about fourteen candle ops, each
//! allocating. The arithmetic is the composed version's, operation for operation in float32
//! (candle's `x * a` is `x * (a as f32) + 0`, `x / a` is `x * (1 / a)`), so results agree
//! to the bit (tested).

use super::dense::values;
use candle_core::{CpuStorage, InplaceOp3, Layout, Result, Tensor};

/// The constants of one step.
#[derive(Debug, Clone, Copy)]
pub struct AdamStep {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub decoupled: bool,
    /// Gradient scale (clipping); 1 for none.
    pub scale: f64,
    /// Steps taken, this one included.
    pub t: i32,
}

impl AdamStep {
    /// The gradient as the moments see it: scaled, plus the L2 term of plain Adam.
    #[inline(always)]
    fn grad(&self, g: f32, theta: f32) -> f32 {
        let g = if self.scale != 1.0 { g * self.scale as f32 + 0.0 } else { g };
        if self.weight_decay != 0.0 && !self.decoupled { g + (theta * self.weight_decay as f32 + 0.0) } else { g }
    }
}

fn slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => candle_core::bail!("in-place Adam takes contiguous float32 tensors"),
    }
}

/// One moment in place, from (gradient, parameter).
struct Moment {
    step: AdamStep,
    second: bool,
}

impl InplaceOp3 for Moment {
    fn name(&self) -> &'static str {
        "flowline-adam-moment"
    }
    fn cpu_fwd(
        &self,
        sm: &mut CpuStorage,
        lm: &Layout,
        sg: &CpuStorage,
        lg: &Layout,
        st: &CpuStorage,
        lt: &Layout,
    ) -> Result<()> {
        let (g, theta) = (values(sg, lg)?, values(st, lt)?);
        let m = slice_mut(sm, lm)?;
        if m.len() != g.len() || g.len() != theta.len() {
            candle_core::bail!("Adam: moment, gradient and parameter differ in size");
        }
        let s = self.step;
        let (beta, keep) =
            if self.second { (s.beta2, (1.0 - s.beta2) as f32) } else { (s.beta1, (1.0 - s.beta1) as f32) };
        let beta = beta as f32;
        for ((m, g), th) in m.iter_mut().zip(g.iter()).zip(theta.iter()) {
            let g = s.grad(*g, *th);
            let x = if self.second { g * g } else { g };
            *m = (*m * beta + 0.0) + (x * keep + 0.0);
        }
        Ok(())
    }
}

/// The parameter in place, from (first moment, second moment).
struct Update(AdamStep);

impl InplaceOp3 for Update {
    fn name(&self) -> &'static str {
        "flowline-adam-update"
    }
    fn cpu_fwd(
        &self,
        st: &mut CpuStorage,
        lt: &Layout,
        sm: &CpuStorage,
        lm: &Layout,
        sv: &CpuStorage,
        lv: &Layout,
    ) -> Result<()> {
        let s = self.0;
        let (m, v) = (values(sm, lm)?, values(sv, lv)?);
        let theta = slice_mut(st, lt)?;
        if theta.len() != m.len() || m.len() != v.len() {
            candle_core::bail!("Adam: parameter and moments differ in size");
        }
        let c1 = (1.0 / (1.0 - s.beta1.powi(s.t))) as f32;
        let c2 = (1.0 / (1.0 - s.beta2.powi(s.t))) as f32;
        let (eps, lr) = (s.eps as f32, s.lr as f32);
        let decay = (s.decoupled && s.weight_decay != 0.0).then_some((1.0 - s.lr * s.weight_decay) as f32);
        for ((th, m), v) in theta.iter_mut().zip(m.iter()).zip(v.iter()) {
            let mhat = *m * c1 + 0.0;
            let vhat = *v * c2 + 0.0;
            let update = mhat / (vhat.sqrt() * 1.0 + eps);
            let kept = match decay {
                Some(d) => *th * d + 0.0,
                None => *th,
            };
            *th = kept - (update * lr + 0.0);
        }
        Ok(())
    }
}

/// One Adam step in place: the moments `m`, `v` (zero before the first step) and the
/// parameter `theta`, from the gradient `g`.
pub fn adam_step(theta: &Tensor, m: &Tensor, v: &Tensor, g: &Tensor, step: AdamStep) -> Result<()> {
    m.inplace_op3(g, theta, &Moment { step, second: false })?;
    v.inplace_op3(g, theta, &Moment { step, second: true })?;
    theta.inplace_op3(m, v, &Update(step))
}
