//! Before the switch, both sides are compared as the tenant's role (through the mover): the rows of every
//! table, the tenant's ledger, and the target's ledger against Landlord's own copy. Counting uses
//! `query_to_xml(format('… %I.%I', …))`, so table names are quoted by PostgreSQL, never by string building.

use std::collections::BTreeMap;

use crate::catalog::Scope;
use crate::db::Error;
use crate::db::connect::{Databases, DbConnection};
use crate::db::ident::TenantNames;
use crate::db::migrating::ledger::{self, LedgerEntry};
use crate::db::migrating::ledger_copy;

/// What one side holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Rows per table (`schema.table`, as PostgreSQL quotes it).
    pub rows: BTreeMap<String, i64>,
    /// The tenant scope's ledger, by module then version.
    pub ledger: Vec<(String, LedgerEntry)>,
}

impl Snapshot {
    pub fn total_rows(&self) -> i64 {
        self.rows.values().sum()
    }

    /// The highest version applied per module.
    pub fn releases(&self) -> BTreeMap<&str, i64> {
        let mut releases = BTreeMap::new();
        for (module, entry) in &self.ledger {
            let version = releases.entry(module.as_str()).or_insert(entry.version);
            *version = (*version).max(entry.version);
        }
        releases
    }
}

/// Row counts and ledger of the database `conn` is in (a mover's session acting as the tenant's role).
pub async fn snapshot(conn: &mut DbConnection) -> Result<Snapshot, Error> {
    let database = conn.database().to_string();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT pg_catalog.format('%I.%I', n.nspname, c.relname),
                (pg_catalog.xpath('/row/c/text()', pg_catalog.query_to_xml(
                    pg_catalog.format('SELECT pg_catalog.count(*) AS c FROM %I.%I', n.nspname, c.relname),
                    false, true, '')))[1]::text::bigint
           FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
          ORDER BY 1",
    )
    .fetch_all(&mut **conn)
    .await
    .map_err(|e| Error::sql("counting the rows of every table", &database, e))?;
    let ledger = ledger::all_entries(conn, &database, Scope::Tenant).await?;
    Ok(Snapshot {
        rows: rows.into_iter().collect(),
        ledger,
    })
}

/// Every way `target` differs from `source`, in words a person can check. Pure.
pub fn differences(source: &Snapshot, target: &Snapshot) -> Vec<String> {
    let mut found = Vec::new();
    for (table, rows) in &source.rows {
        match target.rows.get(table) {
            None => found.push(format!("table {table} is missing")),
            Some(copied) if copied != rows => {
                found.push(format!("table {table} has {copied} rows, not {rows}"))
            }
            Some(_) => {}
        }
    }
    for table in target.rows.keys() {
        if !source.rows.contains_key(table) {
            found.push(format!("table {table} was not in the source"));
        }
    }
    if source.ledger != target.ledger {
        found.push(format!(
            "the ledger holds {} migrations, not the source's {}",
            target.ledger.len(),
            source.ledger.len()
        ));
    }
    found
}

/// How the target's ledger differs from Landlord's copy of the tenant's ledger (in the landlord database,
/// where the tenant cannot write).
pub async fn ledger_copy_differences(
    landlord: &Databases,
    tenant: &TenantNames,
    target: &Snapshot,
) -> Result<Vec<String>, Error> {
    let copy = landlord.ledger_copy(tenant);
    let mut modules: Vec<String> = copy.modules().await?;
    modules.extend(target.ledger.iter().map(|(module, _)| module.clone()));
    modules.sort();
    modules.dedup();
    let mut found = Vec::new();
    for module in modules {
        let applied: Vec<LedgerEntry> = target
            .ledger
            .iter()
            .filter(|(m, _)| *m == module)
            .map(|(_, entry)| entry.clone())
            .collect();
        let kept = copy.entries(&module).await?;
        if let Err(differences) = ledger_copy::compare(&applied, &kept) {
            for difference in differences {
                found.push(format!(
                    "module {module}: against Landlord's copy of the ledger, migration {difference}"
                ));
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: i64) -> LedgerEntry {
        LedgerEntry {
            version,
            description: format!("m{version}"),
            checksum: vec![version as u8],
            applied_at: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
            execution_ms: 1,
        }
    }

    fn side(rows: &[(&str, i64)], ledger: &[i64]) -> Snapshot {
        Snapshot {
            rows: rows.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
            ledger: ledger
                .iter()
                .map(|v| ("tasks".to_string(), entry(*v)))
                .collect(),
        }
    }

    #[test]
    fn every_difference_is_named() {
        let source = side(&[("public.a", 10), ("public.b", 0)], &[1, 2]);
        assert!(differences(&source, &source.clone()).is_empty());
        assert_eq!(source.total_rows(), 10);
        assert_eq!(source.releases().get("tasks"), Some(&2));
        let cases = [
            (
                side(&[("public.a", 9), ("public.b", 0)], &[1, 2]),
                vec!["table public.a has 9 rows, not 10"],
            ),
            (
                side(&[("public.a", 10)], &[1, 2]),
                vec!["table public.b is missing"],
            ),
            (
                side(
                    &[("public.a", 10), ("public.b", 0), ("public.c", 1)],
                    &[1, 2],
                ),
                vec!["table public.c was not in the source"],
            ),
            (
                side(&[("public.a", 10), ("public.b", 0)], &[1]),
                vec!["the ledger holds 1 migrations, not the source's 2"],
            ),
        ];
        for (target, expected) in cases {
            assert_eq!(differences(&source, &target), expected);
        }
    }
}
