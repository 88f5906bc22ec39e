//! CPU time of the whole process, for the timing examples (shared through `#[path]`).

/// CPU time of all threads of this process so far, in seconds, from `/proc/self/task/*/schedstat` (0 where `/proc`
/// is not available). Unlike wall time, it hardly depends on what else loads a shared machine.
pub fn cpu_s() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        * 1e-9
}
