//! Why `landlord catalog test` could not finish its work: the server or the command line, not the
//! catalog. A migration that fails or a down that does not restore the schema is a finding of the run,
//! not an error.

use crate::db;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Database(#[from] db::Error),
    #[error("interrupted")]
    Interrupted,
    #[error(
        "{}could not drop scratch database(s) {}: {source}; drop them by hand",
        after.as_ref().map(|e| format!("{e}; then ")).unwrap_or_default(),
        names.join(", ")
    )]
    Cleanup {
        names: Vec<String>,
        source: db::Error,
        /// What went wrong before the clean-up, if anything.
        after: Option<Box<Error>>,
    },
}
