//! Cache prefetch hints, for the few loops whose time goes to cache
//! misses on large tables (the windows of many feeds, the narratives' LSH
//! band table). Such a loop asks for the next item's memory while it works
//! on the current one, so the misses overlap with work instead of
//! following each other. A hint changes no result; off x86-64 it does
//! nothing.

/// Asks the CPU to start loading the cache line at `p` (a hint only).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and has no effect on program state,
    // whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Prefetches one line for every 64 bytes from `start` on, `len` bytes.
#[inline(always)]
fn prefetch_lines(start: *const u8, len: usize) {
    let mut off = 0;
    while off < len {
        prefetch(start.wrapping_add(off));
        off += 64;
    }
}

/// Prefetches every cache line of `*v`.
#[inline(always)]
pub(crate) fn prefetch_value<T>(v: &T) {
    let start = (v as *const T).cast::<u8>();
    prefetch_lines(start, std::mem::size_of::<T>());
    // The last byte, in case `v` straddles one more line.
    prefetch(start.wrapping_add(std::mem::size_of::<T>().saturating_sub(1)));
}

/// Prefetches the lines a slice starts on, one per 64 bytes of it.
#[inline(always)]
pub(crate) fn prefetch_slice<T>(v: &[T]) {
    prefetch_lines(v.as_ptr().cast(), std::mem::size_of_val(v));
}
