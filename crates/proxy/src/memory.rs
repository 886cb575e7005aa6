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
//! mimalloc is built with its `no_thp` feature (the proxy's `Cargo.toml`):
//! otherwise it advises its arena (1 GiB of address space, committed
//! eagerly on Linux) `MADV_HUGEPAGE`, and on hosts whose transparent huge
//! pages are in `madvise` mode (the common default) the kernel backed the
//! arena with 2 MiB pages of which the proxy used a few KiB. `bench/run.sh`
//! weft-1hop (release, medians of three runs): idle RSS 14.6 → 9.6 MiB,
//! with 200 open keep-alive connections 24.1 → 18.9 MiB (figures in
//! ARCHITECTURE.md). Hosts with THP `always` still get huge pages.
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

/// The size of what `function` returns, without calling it: how much a
/// future (or value) it makes holds, for tests that keep per-connection
/// state small.
#[cfg(test)]
pub(crate) fn returned_size<A, B, R>(_: &impl FnOnce(A, B) -> R) -> usize {
    std::mem::size_of::<R>()
}

#[cfg(test)]
mod tests {
    /// mimalloc's huge-page advice shows only in a process that uses it as
    /// its allocator (not in this test binary), so the feature is checked
    /// where it is set.
    #[test]
    fn mimalloc_is_built_without_huge_page_advice() {
        let manifest = include_str!("../Cargo.toml");
        let mimalloc = manifest
            .lines()
            .find(|line| line.starts_with("mimalloc"))
            .expect("the proxy depends on mimalloc");
        assert!(
            mimalloc.contains("\"no_thp\""),
            "mimalloc without its no_thp feature advises MADV_HUGEPAGE: {mimalloc}"
        );
    }
}
