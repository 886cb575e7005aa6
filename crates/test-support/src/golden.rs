//! Golden files: a test's output compared with a file in the repository, or
//! written over it when `WEFT_UPDATE_GOLDEN` is set (then review the diff).

use std::path::Path;

/// Compares `actual` with the golden file at `path`; under
/// `WEFT_UPDATE_GOLDEN` writes `actual` there instead. `what` names the
/// output in the failure message (`weft inject`'s output, …).
pub fn check(path: &Path, actual: &str, what: &str) {
    if std::env::var_os("WEFT_UPDATE_GOLDEN").is_some() {
        std::fs::write(path, actual).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        return;
    }
    let expected =
        std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    assert!(
        expected == actual,
        "{} differs from {what}; if the change is intended, rerun with \
         WEFT_UPDATE_GOLDEN=1 and review the diff.\n--- {what}:\n{actual}",
        path.display()
    );
}
