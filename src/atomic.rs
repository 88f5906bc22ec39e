//! Atomic file output: write to a temporary file beside the target, flush it to disk, then rename.
//!
//! A crash or a failed check part-way through never leaves a half-written file under its final name, which matters
//! when a print lab picks files up from a shared folder.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Write `path` atomically with the bytes produced by `fill`.
///
/// The temporary file lives in the same folder (so the rename stays on one file system) and is removed if `fill`
/// or any step after it fails.
pub fn write_atomic<F>(path: &Path, fill: F) -> std::io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> std::io::Result<()>,
{
    let tmp = temporary_path(path);
    let result = (|| {
        let file = File::create(&tmp)?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        fill(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_write_leaves_nothing_under_the_final_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("guide.stl");
        let err = write_atomic(&target, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("check failed"))
        });
        assert!(err.is_err());
        assert!(!target.exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("list").count(),
            0,
            "temporary file removed"
        );
        write_atomic(&target, |w| w.write_all(b"whole")).expect("write");
        assert_eq!(std::fs::read(&target).expect("read"), b"whole");
    }
}
