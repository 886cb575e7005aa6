//! The property the `mesh_file` fuzz target in `fuzz/` checks, kept here so
//! that the normal test run replays the committed fuzz corpus through
//! exactly the same code (see the test at the bottom).
//!
//! [`mesh_file`] takes the fuzzer's bytes as a mesh file and panics if
//! parsing (`parse_changes`, which `parse_mesh` wraps) panics or breaks a stated property: every problem points at a
//! document and a line of the file; an accepted file indexes one document
//! per object, and parsing it again against its own index finds nothing
//! changed and nothing deleted.

use crate::mesh_file::{DocumentIndex, parse_changes};

/// The mesh-file parser on any text.
pub fn mesh_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // YAML breaks lines at CR, LF and CR LF, and the parser counts lines
    // that way inside a document; an error at the very end may point one
    // past the last line.
    let last_line = (text.matches('\n').count() + text.matches('\r').count()) as u64 + 1;
    match parse_changes(text, &DocumentIndex::default()) {
        Ok(changes) => {
            assert!(changes.deleted.is_empty());
            assert_eq!(changes.index.len(), changes.applied.len());
            let again = parse_changes(text, &changes.index).expect("the same text parses again");
            assert!(again.applied.is_empty(), "{:?}", again.applied);
            assert!(again.deleted.is_empty(), "{:?}", again.deleted);
            assert_eq!(again.index.len(), changes.index.len());
        }
        Err(problems) => {
            assert!(!problems.is_empty());
            for problem in &problems {
                assert!(problem.document >= 1, "{problem}");
                assert!((1..=last_line).contains(&problem.line), "{problem}");
                assert!(!problem.reason.is_empty(), "{problem:?}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every committed seed and regression input of the `mesh_file` fuzz
    /// target (`fuzz/corpus/mesh_file/`, `fuzz/regressions/mesh_file/`).
    #[test]
    fn fuzz_corpus_replay() {
        let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut replayed = 0;
        for directory in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(directory).join("mesh_file")) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("directory entry").path();
                let data = std::fs::read(&path).expect("readable input");
                let outcome = std::panic::catch_unwind(|| super::mesh_file(&data));
                assert!(outcome.is_ok(), "{} fails", path.display());
                replayed += 1;
            }
        }
        assert!(replayed > 0, "no corpus under {}", fuzz.display());
    }
}
