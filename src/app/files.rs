//! What the application keeps between runs: the recent files and the autosaved plan.
//!
//! Why a side file and not the plan itself: autosave must never overwrite what the user saved. Every 30 s with
//! unsaved changes the plan is written (atomically) beside its file as `NAME.json.autosave`, or, for a plan never
//! saved, into the configuration folder under its case ID. A save removes it. If the application ends without
//! saving (a crash, a killed process), opening the plan again finds a side file that differs from it and offers it
//! back; the unsaved plans are offered at start.
//!
//! The configuration folder is `$GUIDESMITH_CONFIG_DIR`, else `$XDG_CONFIG_HOME/guidesmith`, else
//! `~/.config/guidesmith`.

use std::path::{Path, PathBuf};

/// How many recent files are kept.
pub const RECENT_MAX: usize = 10;

/// The configuration folder (not created); the application may be given another (tests are).
pub fn default_config_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GUIDESMITH_CONFIG_DIR") {
        return PathBuf::from(dir);
    }
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(std::env::temp_dir)
        .join("guidesmith")
}

fn recent_file(config: &Path) -> PathBuf {
    config.join("recent.json")
}

/// The recent files, newest first (those that no longer exist are left out).
pub fn recent(config: &Path) -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string(recent_file(config)) else {
        return Vec::new();
    };
    serde_json::from_str::<Vec<PathBuf>>(&text)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.exists())
        .collect()
}

/// Puts `path` first in the recent files.
pub fn remember(config: &Path, path: &Path) -> Result<(), String> {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut list = recent(config);
    list.retain(|p| p != &path);
    list.insert(0, path);
    list.truncate(RECENT_MAX);
    std::fs::create_dir_all(config).map_err(|e| format!("{}: {e}", config.display()))?;
    let text = serde_json::to_string_pretty(&list).map_err(|e| e.to_string())?;
    let file = recent_file(config);
    guidesmith::atomic::write_atomic(&file, |f| std::io::Write::write_all(f, text.as_bytes()))
        .map_err(|e| format!("{}: {e}", file.display()))
}

/// Where the plan saved at `plan_path` (or, never saved, the plan of case `case_id`) is autosaved.
pub fn autosave_path(config: &Path, plan_path: Option<&Path>, case_id: &str) -> PathBuf {
    match plan_path {
        Some(p) => {
            let mut name = p.file_name().map(|n| n.to_os_string()).unwrap_or_default();
            name.push(".autosave");
            p.with_file_name(name)
        }
        None => config.join("autosave").join(format!("{case_id}.json")),
    }
}

/// Writes the autosave side file (atomically).
pub fn autosave(path: &Path, json: &str) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    guidesmith::atomic::write_atomic(path, |f| std::io::Write::write_all(f, json.as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Plans autosaved before they were ever saved.
pub fn unsaved_autosaves(config: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(config.join("autosave")) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    found.sort();
    found
}
