//! Giving memory back: the allocator is mimalloc (v2, set in `main.rs`),
//! told here to return freed pages to the system at once.
//!
//! mimalloc's default purge delay (10 ms) only schedules a purge, which runs
//! on a later allocation in the same heap: after a flood of connections that
//! held request heads, a proxy that goes back to light traffic kept ~90 MB
//! of the ~95 MB the flood took (3,000 connections, debug build). With a
//! delay of 0 the pages go back as they are freed (119 MB → 25 MB, the
//! baseline). Pages are purged whole (64 KiB and up), so steady traffic,
//! which reuses its pages, pays no extra system calls per request.
//!
//! The one place the proxy allows unsafe code (see its `Cargo.toml`).

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`, v2: the option after
/// `mi_option_eager_commit_delay`, which `libmimalloc-sys` names).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = libmimalloc_sys::mi_option_eager_commit_delay + 1;

/// Sets mimalloc to purge freed pages at once. Call once, at start-up.
#[allow(unsafe_code)]
pub fn return_freed_pages_at_once() {
    // SAFETY: mi_option_set stores an integer in mimalloc's option table;
    // it takes no pointers and is safe to call at any time.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
}
