//! How the `flowline` binary (mimalloc, its global allocator) treats freed memory.
//!
//! mimalloc returns memory that stayed free for a while to the OS ("purging"); a training
//! step frees its activations and allocates them again a moment later, so each step paid
//! for fresh pages, which the kernel clears: on this project's 2-core VM, 8,646 page faults
//! and 4.28 s of CPU for 13 steps of the example convnet, against 344 faults and 3.25 s with
//! purging off (bench/NOTES.md, change 8). Memory stays mapped for reuse at its peak, as in
//! PyTorch's caching allocators.

/// mimalloc's `purge_delay` option: its index in mimalloc 3's `mi_option_e` (the Rust
/// bindings name only some options). Milliseconds a free span waits before it is returned;
/// -1: never.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keep freed memory for reuse instead of returning it to the OS. Call at start-up.
pub fn keep_freed_memory() {
    // SAFETY: setting an option is thread-safe in mimalloc and affects only later purges.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index is the purge delay's: its default is 1,000 ms (no other option has that
    /// default), and after `keep_freed_memory` it reads -1.
    #[test]
    fn the_option_set_is_the_purge_delay() {
        // SAFETY: reading and setting options is thread-safe.
        unsafe {
            if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
                assert_eq!(libmimalloc_sys::mi_option_get(PURGE_DELAY), 1000);
            }
            keep_freed_memory();
            assert_eq!(libmimalloc_sys::mi_option_get(PURGE_DELAY), -1);
        }
    }
}
