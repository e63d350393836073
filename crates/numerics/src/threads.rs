//! candle looks up its CPU thread count on every operation, and with `RAYON_NUM_THREADS`
//! unset that lookup parses /proc/cpuinfo (num_cpus::get_physical) each time: measured, a
//! third of a small neural ODE's forward and backward pass (node_rk4: 158 -> 108 ms) and of
//! an MLP training step (0.34 -> 0.22 ms). Pinning the variable once at start-up, to the
//! count candle would choose, turns the lookup into an environment read.

/// Set `RAYON_NUM_THREADS` to candle's own choice of thread count, unless it is set.
///
/// # Safety
/// It sets an environment variable: call it before any other thread of the process starts
/// (first thing in `main`).
pub unsafe fn pin_thread_count() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let n = candle_core::utils::get_num_threads();
        // SAFETY: the caller guarantees no other thread runs yet.
        unsafe { std::env::set_var("RAYON_NUM_THREADS", n.to_string()) };
    }
}
