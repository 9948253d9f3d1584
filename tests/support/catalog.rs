//! Module catalogs of one test: a copy of the repository's modules/ plus whatever files the test adds.

use std::path::Path;

use super::repo_root;

/// Copies modules/ into a temporary directory and writes `extra` files (paths relative to it) into it.
pub fn catalog_with(extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    copy_dir(&repo_root().join("modules"), dir.path());
    for (path, content) in extra {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().expect("parent")).expect("create dirs");
        std::fs::write(file, content).expect("write catalog file");
    }
    dir
}

/// Copies the directory tree `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy file");
        }
    }
}
