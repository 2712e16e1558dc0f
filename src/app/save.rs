//! Writing an encoded export (the scale GIF; images go through `imaging::save`) to a temporary
//! file next to the target and moving it into place, never replacing a file unless asked.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to a temporary file in the target's folder, then moves it into place; with
/// `overwrite` false an existing file is never replaced, even one created meanwhile.
pub fn write_atomic(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !overwrite && path.exists() {
        return Err(format!("{} already exists", path.display()));
    }
    let name = path
        .file_name()
        .map_or_else(|| "export".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if overwrite {
            std::fs::rename(&tmp, path)
        } else {
            // A hard link fails if the name is taken, so nothing is replaced by a race.
            std::fs::hard_link(&tmp, path).or_else(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Err(e)
                } else {
                    // File systems without hard links: last check, then rename.
                    if path.exists() {
                        Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists))
                    } else {
                        std::fs::rename(&tmp, path)
                    }
                }
            })
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    result.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!("{} already exists", path.display())
        } else {
            e.to_string()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_replaces_without_permission() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.bin");
        write_atomic(&p, b"first", false).unwrap();
        assert!(write_atomic(&p, b"second", false).is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        write_atomic(&p, b"third", true).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"third");
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
