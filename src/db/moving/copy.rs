//! The copy itself: `pg_dump --format=custom` on the source piped, through the operator, into `pg_restore`
//! on the target. No shell: two child processes with an explicit argument list and an environment holding
//! only their libpq settings (the password among them, never on a command line). Both log in as the
//! tenant's mover and act as the tenant's role (`--role`), so the dump reads what the tenant can read and
//! everything restored belongs to the tenant (`--no-owner`). The restore is one transaction that stops at
//! the first error: a failed copy leaves an empty target.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use crate::db::Error;
use crate::db::connect::Databases;
use crate::db::ident::TenantNames;
use crate::db::moving::mover::Mover;

/// Where pg_dump and pg_restore are (`LANDLORD_PG_BIN_DIR`; None: found on PATH).
#[derive(Clone, Debug, Default)]
pub struct PgTools {
    pub bin_dir: Option<PathBuf>,
}

impl PgTools {
    fn program(&self, name: &str) -> PathBuf {
        match &self.bin_dir {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        }
    }

    fn spawn(
        &self,
        tool: &'static str,
        args: &[&str],
        env: Vec<(&'static str, String)>,
        stdin: Stdio,
    ) -> Result<Child, Error> {
        let program = self.program(tool);
        let mut command = Command::new(&program);
        command
            .args(args)
            .env_clear()
            .envs(env)
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command.spawn().map_err(|e| Error::ToolUnavailable {
            tool,
            path: program.display().to_string(),
            problem: e.to_string(),
        })
    }
}

/// Bytes read per turn of the pipe.
const CHUNK: usize = 256 * 1024;
/// What is kept of a tool's error output for the message.
const KEPT_ERROR: usize = 600;

/// Dumps the tenant's database on `source` into the (empty) one on `target`, counting into `copied` every
/// byte that goes through; returns the total.
pub async fn copy_database(
    tools: &PgTools,
    tenant: &TenantNames,
    (source, source_mover): (&Databases, &Mover),
    (target, target_mover): (&Databases, &Mover),
    copied: Arc<AtomicU64>,
) -> Result<u64, Error> {
    let role = tenant.role().as_str();
    let database = tenant.database().as_str();
    let mut dump = tools.spawn(
        "pg_dump",
        &[
            "--format=custom",
            "--compress=0",
            "--no-password",
            "--role",
            role,
        ],
        source_mover.client_env(source, tenant),
        Stdio::null(),
    )?;
    let mut restore = tools.spawn(
        "pg_restore",
        &[
            "--no-owner",
            "--role",
            role,
            "--exit-on-error",
            "--single-transaction",
            "--no-password",
            "--dbname",
            database,
        ],
        target_mover.client_env(target, tenant),
        Stdio::piped(),
    )?;
    let dump_errors = tokio::spawn(tail(dump.stderr.take()));
    let restore_errors = tokio::spawn(tail(restore.stderr.take()));
    let restore_output = tokio::spawn(tail(restore.stdout.take()));
    let piped = pipe(&mut dump, &mut restore, &copied).await;
    if piped.is_err() {
        // The restore stopped reading (it failed): the dump would wait on its pipe for ever.
        dump.start_kill().ok();
    }
    let dumped = dump.wait().await;
    let restored = restore.wait().await;
    let dump_errors = dump_errors.await.unwrap_or_default();
    let restore_errors = restore_errors.await.unwrap_or_default();
    drop(restore_output);
    let failed = |problem: String| Error::CopyFailed {
        database: database.to_string(),
        problem,
    };
    match (dumped, restored) {
        (Ok(d), _) if !d.success() => Err(failed(format!("pg_dump {d}: {dump_errors}"))),
        (_, Ok(r)) if !r.success() => Err(failed(format!("pg_restore {r}: {restore_errors}"))),
        (Err(e), _) | (_, Err(e)) => Err(failed(format!("waiting for the copy: {e}"))),
        (Ok(_), Ok(_)) => match piped {
            Ok(bytes) => Ok(bytes),
            Err(e) => Err(failed(format!("piping the dump into the restore: {e}"))),
        },
    }
}

/// Copies pg_dump's output into pg_restore's input, counting; closes the input at the end.
async fn pipe(dump: &mut Child, restore: &mut Child, copied: &AtomicU64) -> std::io::Result<u64> {
    let (Some(mut from), Some(mut to)) = (dump.stdout.take(), restore.stdin.take()) else {
        return Err(std::io::Error::other("the tools' pipes were not opened"));
    };
    let mut buffer = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        to.write_all(&buffer[..read]).await?;
        total += read as u64;
        copied.store(total, Ordering::Relaxed);
    }
    to.shutdown().await?;
    Ok(total)
}

/// The last lines a tool wrote that say `error`, short: a message, not a log. Row values a failed COPY
/// might quote stay out of it (only PostgreSQL's first line of each error is kept).
async fn tail(output: Option<impl AsyncRead + Unpin>) -> String {
    let Some(mut output) = output else {
        return String::new();
    };
    let mut text = Vec::new();
    if output.read_to_end(&mut text).await.is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&text);
    let errors: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("error:") || line.contains("FATAL:"))
        .collect();
    let mut kept = errors.join(" ");
    if kept.is_empty() {
        kept = text.lines().last().unwrap_or("no output").to_string();
    }
    if kept.len() > KEPT_ERROR {
        let mut cut = KEPT_ERROR;
        while !kept.is_char_boundary(cut) {
            cut -= 1;
        }
        kept.truncate(cut);
        kept.push('…');
    }
    kept
}
