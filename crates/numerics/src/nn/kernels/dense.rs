//! Dense f32 buffers of candle CPU tensors, and matrix products on them through the `gemm`
//! crate (the one candle uses), single-threaded: callers parallelise over independent work.

use candle_core::{CpuStorage, Layout, Result};
use std::borrow::Cow;
use std::mem::MaybeUninit;

/// The tensor's values in row-major order: borrowed when contiguous, copied otherwise.
pub fn values<'a>(s: &'a CpuStorage, l: &Layout) -> Result<Cow<'a, [f32]>> {
    let data = match s {
        CpuStorage::F32(v) => v,
        _ => candle_core::bail!("flowline's CPU kernels take float32 tensors"),
    };
    if let Some((a, b)) = l.contiguous_offsets() {
        return Ok(Cow::Borrowed(&data[a..b]));
    }
    let (dims, strides) = (l.dims(), l.stride());
    let mut out = Vec::with_capacity(l.shape().elem_count());
    let mut index = vec![0usize; dims.len()];
    for _ in 0..l.shape().elem_count() {
        out.push(data[l.start_offset() + index.iter().zip(strides).map(|(i, s)| i * s).sum::<usize>()]);
        for d in (0..dims.len()).rev() {
            index[d] += 1;
            if index[d] < dims[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(Cow::Owned(out))
}

/// A new buffer of `n` values written by `fill`, without zeroing it first (a pass over
/// memory that elementwise backward ops, which overwrite everything, do not need).
///
/// # Safety
/// `fill` writes every one of the `n` elements it is given.
pub unsafe fn written(n: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut v = Vec::with_capacity(n);
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: the caller guarantees that `fill` initialised all n elements.
    unsafe { v.set_len(n) };
    v
}

/// A matrix operand: its values with (row stride, column stride); a transposed view swaps them.
#[derive(Clone, Copy)]
pub struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// A row-major `rows x cols` matrix.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Mat { data, rs: cols, cs: 1 }
    }
    pub fn t(self) -> Self {
        Mat { data: self.data, rs: self.cs, cs: self.rs }
    }
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0 || cols == 0 || (rows - 1) * self.rs + (cols - 1) * self.cs < self.data.len()
    }
}

/// dst (row-major m x n) = dst (when `accumulate`) + a (m x k) b (k x n), on this thread.
pub fn matmul(m: usize, n: usize, k: usize, dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    matmul_on(m, n, k, dst, a, b, accumulate, 1)
}

/// `matmul` on `threads` threads (gemm's own split of the product).
#[allow(clippy::too_many_arguments)]
pub fn matmul_on(m: usize, n: usize, k: usize, dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, threads: usize) {
    matmul_strided(m, n, k, dst, n, a, b, accumulate, threads)
}

/// `matmul_on` into the first n columns of a row-major destination with rows of `dst_rs`
/// values (the rest of each row untouched).
#[allow(clippy::too_many_arguments)]
pub fn matmul_strided(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    a: Mat,
    b: Mat,
    accumulate: bool,
    threads: usize,
) {
    let dst_fits = m == 0 || n == 0 || (dst_rs >= n && dst.len() >= (m - 1) * dst_rs + n);
    assert!(dst_fits && a.fits(m, k) && b.fits(k, n), "matmul operands do not fit their shapes");
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.chunks_mut(dst_rs).take(m).for_each(|row| row[..n].fill(0.0));
        }
        return;
    }
    // SAFETY: the assertion above keeps every index the kernel reads or writes in bounds.
    unsafe { gemm_into(m, n, k, dst.as_mut_ptr(), dst_rs, a, b, accumulate, threads) }
}

/// a (m x k) b (k x n) written to `dst` (row-major, m x n) without reading it, on
/// `threads` threads: for outputs in memory not yet initialised.
///
/// # Safety
/// `dst` is valid for writes of m * n values; after the call they are all initialised.
pub unsafe fn matmul_uninit(m: usize, n: usize, k: usize, dst: *mut f32, a: Mat, b: Mat, threads: usize) {
    assert!(a.fits(m, k) && b.fits(k, n), "matmul operands do not fit their shapes");
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: as the caller guarantees; gemm writes without reading when not accumulating,
    // and with nothing to sum (k = 0) the product is zero.
    unsafe {
        if k == 0 {
            std::ptr::write_bytes(dst, 0, m * n);
        } else {
            gemm_into(m, n, k, dst, n, a, b, false, threads);
        }
    }
}

/// gemm's product into `dst` (rows of `dst_rs` values), read first when `accumulate`.
///
/// # Safety
/// `dst` is valid for writes (and reads, when accumulating) of m rows of n values `dst_rs`
/// apart; a and b fit (m x k) and (k x n).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_into(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    a: Mat,
    b: Mat,
    accumulate: bool,
    threads: usize,
) {
    // SAFETY: as the caller guarantees.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None },
        );
    }
}

/// a (m x k) b (k x n) into a new row-major buffer, on `threads` threads. The buffer is
/// not zeroed first: gemm writes every element of it without reading (a zeroing pass was
/// ~8% of a neural ODE step).
pub fn matmul_new(m: usize, n: usize, k: usize, a: Mat, b: Mat, threads: usize) -> Vec<f32> {
    // SAFETY: matmul_uninit initialises all m * n values it is given.
    unsafe { written(m * n, |out| matmul_uninit(m, n, k, out.as_mut_ptr().cast(), a, b, threads)) }
}

/// A tensor's values where its storage lies, for storage known to be on the CPU.
pub fn cpu_values<'a>(s: &'a candle_core::Storage, l: &Layout) -> Result<Cow<'a, [f32]>> {
    match s {
        candle_core::Storage::Cpu(s) => values(s, l),
        _ => candle_core::bail!("flowline's CPU kernels take CPU tensors"),
    }
}

/// Every value of the tensor is finite, read where it lies (no copy) for CPU float32.
pub fn all_finite(t: &candle_core::Tensor) -> Result<bool> {
    if super::own(t) {
        let (storage, layout) = t.storage_and_layout();
        return Ok(cpu_values(&storage, layout)?.iter().all(|v| v.is_finite()));
    }
    t.to_dtype(candle_core::DType::F64)?.sum_all()?.to_scalar::<f64>().map(f64::is_finite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_match_the_definition_for_plain_and_transposed_operands() {
        let a: Vec<f32> = (0..6).map(|v| v as f32 - 2.0).collect(); // 2 x 3
        let b: Vec<f32> = (0..12).map(|v| (v as f32) * 0.5).collect(); // 3 x 4
        let mut c = vec![1.0f32; 8];
        matmul(2, 4, 3, &mut c, Mat::rows(&a, 3), Mat::rows(&b, 4), true);
        for i in 0..2 {
            for j in 0..4 {
                let want: f32 = 1.0 + (0..3).map(|k| a[i * 3 + k] * b[k * 4 + j]).sum::<f32>();
                assert!((c[i * 4 + j] - want).abs() < 1e-5);
            }
        }
        // a^T (3 x 2) times a (2 x 3).
        let mut g = vec![7.0f32; 9];
        matmul(3, 3, 2, &mut g, Mat::rows(&a, 3).t(), Mat::rows(&a, 3), false);
        for i in 0..3 {
            for j in 0..3 {
                let want: f32 = (0..2).map(|k| a[k * 3 + i] * a[k * 3 + j]).sum();
                assert!((g[i * 3 + j] - want).abs() < 1e-5);
            }
        }
        // Into a new buffer.
        assert_eq!(matmul_new(3, 3, 2, Mat::rows(&a, 3).t(), Mat::rows(&a, 3), 1), g);
        assert_eq!(matmul_new(2, 0, 3, Mat::rows(&a, 3), Mat::rows(&b, 0), 1), Vec::<f32>::new());
        assert_eq!(matmul_new(2, 2, 0, Mat::rows(&[], 0), Mat::rows(&[], 2), 1), vec![0.0; 4]);
        // The same into rows of 5 values: the last two of each row stay as they were.
        let mut h = vec![7.0f32; 15];
        matmul_strided(3, 3, 2, &mut h, 5, Mat::rows(&a, 3).t(), Mat::rows(&a, 3), false, 1);
        for i in 0..3 {
            assert_eq!(&h[i * 5..i * 5 + 3], &g[i * 3..i * 3 + 3]);
            assert_eq!(&h[i * 5 + 3..i * 5 + 5], &[7.0, 7.0]);
        }
    }
}
