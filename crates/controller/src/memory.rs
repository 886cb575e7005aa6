//! Handing freed memory back to the system after a big mesh-file version
//! is replaced.
//!
//! Parsing and indexing a big file allocates many small blocks; once they
//! are freed, glibc's allocator keeps the pages (most of them are not at the
//! top of a heap, so its automatic trimming does not reach them) and the
//! controller's RSS stays at the big version's size: 92 MiB after a
//! 20,000-Service file was replaced by a 10-object one, 30 MiB after
//! `malloc_trim(0)` (26 MiB at start).
//!
//! The one place the controller allows unsafe code (see its `Cargo.toml`).

/// Returns freed heap pages to the system, where the allocator allows it
/// (glibc); elsewhere nothing happens.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_freed() {
    // SAFETY: malloc_trim takes no pointers; it walks glibc's own arenas
    // under their locks and only releases pages no allocation uses.
    let _released = unsafe { libc::malloc_trim(0) };
}

/// Returns freed heap pages to the system, where the allocator allows it
/// (glibc); elsewhere nothing happens.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_freed() {}
