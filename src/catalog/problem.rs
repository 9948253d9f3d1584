//! What a module author got wrong: every problem the loader finds, each tied to the file to fix.

use std::fmt;
use std::path::{Path, PathBuf};

/// One thing wrong in the catalog: the file to fix and a sentence saying what to do.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    pub file: PathBuf,
    pub reason: String,
}

impl Problem {
    pub fn new(file: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Problem {
            file: file.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.reason)
    }
}

/// Every problem found while loading a catalog, sorted by file then reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s) found in the module catalog", problems.len())]
pub struct CatalogErrors {
    pub problems: Vec<Problem>,
}

impl CatalogErrors {
    pub fn new(mut problems: Vec<Problem>) -> Self {
        problems.sort();
        problems.dedup();
        CatalogErrors { problems }
    }

    /// The problems reported against one file.
    pub fn for_file(&self, file: &Path) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(move |p| p.file == file)
    }
}

/// Collects problems while loading so that one mistake never hides the next.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<Problem>);

impl Problems {
    pub(crate) fn push(&mut self, file: impl Into<PathBuf>, reason: impl Into<String>) {
        self.0.push(Problem::new(file, reason));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn into_errors(self) -> CatalogErrors {
        CatalogErrors::new(self.0)
    }
}
