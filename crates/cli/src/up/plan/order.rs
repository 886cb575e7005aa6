//! The order `weft up` starts apps in: every app after the workloads its
//! `spec.run.dependsOn` names, otherwise in file order. Unknown names and
//! circles are planning errors, named by workload.
//!
//! ```text
//! web (dependsOn: books, authors) ─┐
//! books ───────────────────────────┼─► start order: books, authors, web
//! authors ─────────────────────────┘
//! ```

use std::collections::HashMap;

use super::{PlanError, WorkloadPlan};

/// Indexes into `workloads` in start order (a stable topological sort: among
/// the apps whose dependencies have started, the first in the file goes
/// next).
pub fn start_order(workloads: &[WorkloadPlan]) -> Result<Vec<usize>, PlanError> {
    let index: HashMap<String, usize> = workloads
        .iter()
        .enumerate()
        .map(|(position, workload)| (workload.key(), position))
        .collect();
    let mut dependencies: Vec<Vec<usize>> = Vec::with_capacity(workloads.len());
    for workload in workloads {
        let mut resolved = Vec::new();
        for name in &workload.depends_on {
            let Some(&position) = index.get(name) else {
                return Err(PlanError::Workload {
                    workload: workload.key(),
                    reason: format!(
                        "spec.run.dependsOn names {name}, which is not a workload with spec.run in this file"
                    ),
                });
            };
            if position == index[&workload.key()] {
                return Err(PlanError::DependencyCycle(vec![
                    workload.key(),
                    workload.key(),
                ]));
            }
            resolved.push(position);
        }
        dependencies.push(resolved);
    }
    let mut started = vec![false; workloads.len()];
    let mut order = Vec::with_capacity(workloads.len());
    while order.len() < workloads.len() {
        let next = (0..workloads.len()).find(|&position| {
            !started[position]
                && dependencies[position]
                    .iter()
                    .all(|&dependency| started[dependency])
        });
        match next {
            Some(position) => {
                started[position] = true;
                order.push(position);
            }
            None => return Err(cycle(workloads, &dependencies, &started)),
        }
    }
    Ok(order)
}

/// A circle among the workloads not yet started (each of them waits for
/// another one of them): walk the first unstarted dependency until a
/// workload repeats.
fn cycle(workloads: &[WorkloadPlan], dependencies: &[Vec<usize>], started: &[bool]) -> PlanError {
    let mut path: Vec<usize> = Vec::new();
    let mut current = started
        .iter()
        .position(|started| !started)
        .unwrap_or_default();
    while !path.contains(&current) {
        path.push(current);
        current = dependencies[current]
            .iter()
            .copied()
            .find(|&dependency| !started[dependency])
            .unwrap_or(current);
    }
    let start = path
        .iter()
        .position(|&position| position == current)
        .unwrap_or_default();
    let mut names: Vec<String> = path[start..]
        .iter()
        .map(|&position| workloads[position].key())
        .collect();
    names.push(workloads[current].key());
    PlanError::DependencyCycle(names)
}
