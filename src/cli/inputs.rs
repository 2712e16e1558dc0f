//! Which files a batch works on: the files given, and the images inside the folders given (one
//! level, or the whole tree with `--recursive`), each with the sub-folder its output goes to.

use std::path::{Path, PathBuf};

/// File extensions read as images (lower case).
pub const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "webp", "tif", "tiff", "gif"];

/// One input and where, relative to the output folder, its output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    pub path: PathBuf,
    /// Sub-folder below `-o` (empty for files given directly and for a folder's top level).
    pub subdir: PathBuf,
}

/// Inputs found, and the paths that could not be used with the reason.
#[derive(Debug, Default)]
pub struct Collected {
    pub files: Vec<InputFile>,
    pub problems: Vec<(PathBuf, String)>,
}

pub fn is_image(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// Expands the paths given on the command line, keeping their order; files in a folder are
/// sorted by name. A file reached twice (named and inside a folder given too) is kept once.
pub fn collect(paths: &[PathBuf], recursive: bool) -> Collected {
    let mut out = collect_all(paths, recursive);
    let mut seen = std::collections::HashSet::new();
    out.files
        .retain(|f| seen.insert(std::fs::canonicalize(&f.path).unwrap_or_else(|_| f.path.clone())));
    out
}

fn collect_all(paths: &[PathBuf], recursive: bool) -> Collected {
    let mut out = Collected::default();
    for p in paths {
        if p.is_dir() {
            walk(p, Path::new(""), recursive, &mut out);
        } else if p.is_file() {
            // A file named explicitly is tried whatever its extension: decoding decides.
            out.files.push(InputFile {
                path: p.clone(),
                subdir: PathBuf::new(),
            });
        } else {
            out.problems
                .push((p.clone(), "no such file or folder".into()));
        }
    }
    out
}

fn walk(dir: &Path, subdir: &Path, recursive: bool, out: &mut Collected) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            out.problems
                .push((dir.to_path_buf(), format!("cannot list the folder: {e}")));
            return;
        }
    };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    let mut folders = Vec::new();
    for e in entries {
        let path = e.path();
        // Links to folders are not followed (no loops); links to files are.
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if is_dir {
            folders.push((path, e.file_name()));
        } else if path.is_file() && is_image(&path) {
            out.files.push(InputFile {
                path,
                subdir: subdir.to_path_buf(),
            });
        }
    }
    if recursive {
        for (path, name) in folders {
            walk(&path, &subdir.join(name), recursive, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_walked_in_order_keeping_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/deep")).unwrap();
        for f in ["z.png", "a.JPG", "notes.txt", "b/c.webp", "b/deep/d.tiff"] {
            std::fs::write(root.join(f), b"x").unwrap();
        }
        let flat = collect(&[root.to_path_buf()], false);
        let names: Vec<_> = flat
            .files
            .iter()
            .map(|f| f.path.strip_prefix(root).unwrap().to_path_buf())
            .collect();
        assert_eq!(names, vec![PathBuf::from("a.JPG"), PathBuf::from("z.png")]);
        let deep = collect(&[root.to_path_buf()], true);
        let pairs: Vec<_> = deep
            .files
            .iter()
            .map(|f| {
                (
                    f.path.strip_prefix(root).unwrap().to_path_buf(),
                    f.subdir.clone(),
                )
            })
            .collect();
        assert_eq!(
            pairs,
            vec![
                (PathBuf::from("a.JPG"), PathBuf::new()),
                (PathBuf::from("z.png"), PathBuf::new()),
                (PathBuf::from("b/c.webp"), PathBuf::from("b")),
                (PathBuf::from("b/deep/d.tiff"), PathBuf::from("b/deep")),
            ]
        );
    }

    #[test]
    fn missing_paths_are_problems_and_files_are_kept_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("photo.dat");
        std::fs::write(&f, b"x").unwrap();
        let c = collect(&[f.clone(), dir.path().join("nope.png"), f.clone()], false);
        assert_eq!(
            c.files,
            vec![InputFile {
                path: f,
                subdir: PathBuf::new()
            }]
        );
        assert_eq!(c.problems.len(), 1);
    }
}
