//! Runs an elementwise loop compiled for the widest vector unit the processor has.
//!
//! The crate is built for baseline x86-64 (SSE2, 4 floats a vector) so that the binary runs
//! anywhere; PyTorch picks AVX2 or AVX-512 at run time, and so does gemm. A function defined
//! with `wide_fn!` has its body compiled three times (AVX-512, AVX2 + FMA, baseline) and
//! runs the widest this processor has; the choice is made once per process
//! (`FLOWLINE_NO_SIMD` set forces the baseline, to compare).

use std::sync::OnceLock;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Base,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

pub(crate) fn level() -> Level {
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::env::var_os("FLOWLINE_NO_SIMD").is_some() {
                return Level::Base;
            }
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl") {
                return Level::Avx512;
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                return Level::Avx2;
            }
        }
        Level::Base
    })
}

/// Defines a function whose body is compiled for the widest vector unit this processor
/// has and dispatched at run time. The body should be loops over slices of plain floats
/// calling `#[inline(always)]` functions, so that all of it is compiled inside. (A closure
/// passed to a target-feature function is not reliably inlined into it, a named
/// `#[inline(always)]` function is.)
macro_rules! wide_fn {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            unsafe fn avx512($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) {
                body($($arg),*)
            }
            match $crate::nn::kernels::simd::level() {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the features were detected on this processor.
                $crate::nn::kernels::simd::Level::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above.
                $crate::nn::kernels::simd::Level::Avx2 => unsafe { avx2($($arg),*) },
                $crate::nn::kernels::simd::Level::Base => body($($arg),*),
            }
        }
    };
}
pub(crate) use wide_fn;
