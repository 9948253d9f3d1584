//! A deterministic description of a database's schema, read from `pg_catalog` in one query, so that
//! `landlord catalog test` can tell whether a down migration put back exactly what its up changed.
//!
//! Each object is one entry: a key naming it (`table public.expenses`, `column public.expenses.amount`)
//! and a text describing it (PostgreSQL's own `pg_get_*def` where there is one). Covered: schemas,
//! tables, views, materialized views, sequences, composite and foreign tables, columns (type, nullability,
//! default, identity, generated, collation), constraints (also of domains), indexes (and whether they are
//! valid), triggers, functions and procedures, enums, domains, ranges, extended statistics, extensions,
//! row-level security policies, rules, default privileges, privileges and comments on them, and the number
//! of rows of every table (seed rows a down forgot to delete). Left out: column order (a down that re-adds a
//! dropped column cannot put it back in place), objects that belong to an extension, the ledger schema, and
//! what few migrations create (operators, casts, collations, text search, publications): running the up
//! again after the down catches most of those, as "already exists".

use std::collections::BTreeMap;
use std::fmt;

use crate::db::Error;
use crate::db::connect::DbConnection;
use crate::db::migrating::ledger::LEDGER_SCHEMA;

/// Every object of a database's schema, by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    objects: BTreeMap<String, String>,
}

/// How the schema after some steps differs from the schema it should equal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    /// Expected, but gone.
    Missing(String),
    /// There, but not expected.
    Extra(String),
    Changed {
        object: String,
        expected: String,
        found: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::Missing(object) => write!(f, "{object} is missing"),
            Difference::Extra(object) => write!(f, "{object} is left over"),
            Difference::Changed {
                object,
                expected,
                found,
            } => write!(
                f,
                "{object} differs (expected `{expected}`, found `{found}`)"
            ),
        }
    }
}

impl Snapshot {
    /// Builds a snapshot from (key, description) pairs.
    pub fn from_objects(objects: impl IntoIterator<Item = (String, String)>) -> Snapshot {
        Snapshot {
            objects: objects.into_iter().collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// What `found` has that differs from `self` (the expected schema), sorted by object.
    pub fn differences(&self, found: &Snapshot) -> Vec<Difference> {
        let mut differences = Vec::new();
        for (object, expected) in &self.objects {
            match found.objects.get(object) {
                None => differences.push(Difference::Missing(object.clone())),
                Some(now) if now != expected => differences.push(Difference::Changed {
                    object: object.clone(),
                    expected: expected.clone(),
                    found: now.clone(),
                }),
                Some(_) => {}
            }
        }
        differences.extend(
            found
                .objects
                .keys()
                .filter(|object| !self.objects.contains_key(*object))
                .map(|object| Difference::Extra(object.clone())),
        );
        differences.sort_by(|a, b| a.object().cmp(b.object()));
        differences
    }
}

impl Difference {
    pub fn object(&self) -> &str {
        match self {
            Difference::Missing(object) | Difference::Extra(object) => object,
            Difference::Changed { object, .. } => object,
        }
    }
}

/// Kinds whose entries stand for their columns, constraints, triggers, policies, rules and row count.
const RELATIONS: [&str; 6] = [
    "table ",
    "partitioned table ",
    "view ",
    "materialized view ",
    "foreign table ",
    "composite type ",
];

/// Kinds of entries that belong to a relation, named `<kind> <relation>.<name>`.
const PARTS: [&str; 5] = ["column ", "constraint ", "trigger ", "policy ", "rule "];

/// `differences` without the parts of a relation that is itself missing or left over: a forgotten table
/// is one difference to read, not one per column.
pub fn condensed(differences: &[Difference]) -> Vec<&Difference> {
    let whole: Vec<(&str, bool)> = differences
        .iter()
        .filter_map(|d| {
            let (object, extra) = match d {
                Difference::Missing(object) => (object, false),
                Difference::Extra(object) => (object, true),
                Difference::Changed { .. } => return None,
            };
            RELATIONS
                .iter()
                .find_map(|kind| object.strip_prefix(kind))
                .map(|name| (name, extra))
        })
        .collect();
    let part_of = |object: &str, extra: bool| {
        whole.iter().any(|&(name, whole_extra)| {
            whole_extra == extra
                && (object.strip_prefix("row count of ") == Some(name)
                    || PARTS.iter().any(|kind| {
                        object
                            .strip_prefix(kind)
                            .and_then(|rest| rest.strip_prefix(name))
                            .is_some_and(|rest| rest.starts_with('.'))
                    }))
        })
    };
    differences
        .iter()
        .filter(|d| match d {
            Difference::Missing(object) => !part_of(object, false),
            Difference::Extra(object) => !part_of(object, true),
            Difference::Changed { .. } => true,
        })
        .collect()
}

/// Reads the schema of the connection's database. Row counts come from statements PostgreSQL builds
/// itself (`format('%I.%I')` inside `query_to_xml`): table names never pass through Rust as SQL text.
pub async fn snapshot(conn: &mut DbConnection) -> Result<Snapshot, Error> {
    let database = conn.database().to_string();
    let rows: Vec<(String, String)> = sqlx::query_as(SNAPSHOT)
        .bind(LEDGER_SCHEMA)
        .fetch_all(&mut **conn)
        .await
        .map_err(|e| Error::sql("reading the schema", &database, e))?;
    Ok(Snapshot::from_objects(rows))
}

/// `$1` is the ledger schema. Every built-in is schema-qualified; objects an extension owns are left to
/// the extension's entry.
const SNAPSHOT: &str = r#"
WITH ns AS (
    SELECT oid, nspname FROM pg_catalog.pg_namespace
     WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', $1)
       AND nspname NOT LIKE 'pg\_temp\_%' AND nspname NOT LIKE 'pg\_toast\_temp\_%'
), ext AS (
    SELECT classid, objid FROM pg_catalog.pg_depend WHERE deptype = 'e'
), rel AS (
    SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.reloptions, c.relacl, c.relrowsecurity,
           c.relforcerowsecurity, c.relispartition, c.relpartbound,
           pg_catalog.format('%I.%I', ns.nspname, c.relname) AS name, ns.nspname
      FROM pg_catalog.pg_class c JOIN ns ON ns.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')
       AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_class'::regclass AND ext.objid = c.oid)
)
SELECT 'schema ' || pg_catalog.quote_ident(ns.nspname),
       pg_catalog.concat_ws(' ', 'acl', n.nspacl::text,
                            'comment', pg_catalog.obj_description(ns.oid, 'pg_namespace'))
  FROM ns JOIN pg_catalog.pg_namespace n ON n.oid = ns.oid
UNION ALL
SELECT CASE rel.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table' WHEN 'v' THEN 'view'
                        WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                        WHEN 'f' THEN 'foreign table' ELSE 'composite type' END || ' ' || rel.name,
       pg_catalog.concat_ws(' ',
           CASE rel.relpersistence WHEN 'u' THEN 'unlogged' END,
           'options', rel.reloptions::text, 'acl', rel.relacl::text,
           CASE WHEN rel.relrowsecurity THEN 'row security' END,
           CASE WHEN rel.relforcerowsecurity THEN 'forced row security' END,
           CASE WHEN rel.relkind = 'p' THEN 'partition by ' || pg_catalog.pg_get_partkeydef(rel.oid) END,
           CASE WHEN rel.relispartition THEN 'partition ' || pg_catalog.pg_get_expr(rel.relpartbound, rel.oid) END,
           CASE WHEN rel.relkind IN ('v', 'm') THEN 'as ' || pg_catalog.pg_get_viewdef(rel.oid) END,
           (SELECT pg_catalog.concat_ws(' ', 'sequence', s.seqtypid::regtype::text, 'start', s.seqstart,
                                        'increment', s.seqincrement, 'min', s.seqmin, 'max', s.seqmax,
                                        'cache', s.seqcache, CASE WHEN s.seqcycle THEN 'cycle' END)
              FROM pg_catalog.pg_sequence s WHERE s.seqrelid = rel.oid),
           (SELECT 'owned by ' || pg_catalog.format('%s.%I', d.refobjid::regclass, a.attname)
              FROM pg_catalog.pg_depend d
              JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE rel.relkind = 'S' AND d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = rel.oid
               AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')),
           'comment', pg_catalog.obj_description(rel.oid, 'pg_class'))
  FROM rel
UNION ALL
SELECT 'column ' || rel.name || '.' || pg_catalog.quote_ident(a.attname),
       pg_catalog.concat_ws(' ',
           pg_catalog.format_type(a.atttypid, a.atttypmod),
           CASE WHEN a.attnotnull THEN 'not null' END,
           CASE a.attidentity WHEN 'a' THEN 'generated always as identity'
                              WHEN 'd' THEN 'generated by default as identity' END,
           CASE WHEN a.attgenerated = 's' THEN 'generated always as' ELSE 'default' END
               || ' ' || pg_catalog.pg_get_expr(ad.adbin, ad.adrelid),
           'collate ' || CASE WHEN a.attcollation <> t.typcollation THEN co.collname END,
           'acl', a.attacl::text,
           'comment', pg_catalog.col_description(rel.oid, a.attnum))
  FROM rel
  JOIN pg_catalog.pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
  LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
 WHERE rel.relkind <> 'S'
UNION ALL
SELECT 'constraint ' || pg_catalog.format('%I.%I', ns.nspname,
                                          COALESCE(r.relname, ty.typname)) || '.' || pg_catalog.quote_ident(con.conname),
       pg_catalog.pg_get_constraintdef(con.oid)
           || CASE WHEN con.convalidated THEN '' ELSE ' not valid' END
           || COALESCE(' comment ' || pg_catalog.obj_description(con.oid, 'pg_constraint'), '')
  FROM pg_catalog.pg_constraint con
  JOIN ns ON ns.oid = con.connamespace
  LEFT JOIN pg_catalog.pg_class r ON r.oid = con.conrelid
  LEFT JOIN pg_catalog.pg_type ty ON ty.oid = con.contypid
 WHERE (con.conrelid <> 0 AND con.conrelid IN (SELECT oid FROM rel))
    OR (con.contypid <> 0 AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_type'::regclass AND ext.objid = con.contypid))
UNION ALL
SELECT 'index ' || pg_catalog.format('%I.%I', ns.nspname, ic.relname),
       pg_catalog.concat_ws(' ', pg_catalog.pg_get_indexdef(i.indexrelid),
           CASE WHEN NOT i.indisvalid THEN 'invalid' END,
           CASE WHEN i.indisclustered THEN 'clustered' END,
           'comment', pg_catalog.obj_description(i.indexrelid, 'pg_class'))
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
  JOIN ns ON ns.oid = ic.relnamespace
 WHERE i.indrelid IN (SELECT oid FROM rel)
UNION ALL
SELECT 'trigger ' || rel.name || '.' || pg_catalog.quote_ident(tg.tgname),
       pg_catalog.pg_get_triggerdef(tg.oid) || ' enabled ' || tg.tgenabled::text
           || COALESCE(' comment ' || pg_catalog.obj_description(tg.oid, 'pg_trigger'), '')
  FROM pg_catalog.pg_trigger tg JOIN rel ON rel.oid = tg.tgrelid
 WHERE NOT tg.tgisinternal
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'procedure ' WHEN 'a' THEN 'aggregate ' ELSE 'function ' END
           || pg_catalog.format('%I.%I', ns.nspname, p.proname)
           || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
       pg_catalog.concat_ws(' ',
           CASE WHEN p.prokind = 'a' THEN 'returns ' || pg_catalog.pg_get_function_result(p.oid)
                ELSE pg_catalog.pg_get_functiondef(p.oid) END,
           'acl', p.proacl::text,
           'comment', pg_catalog.obj_description(p.oid, 'pg_proc'))
  FROM pg_catalog.pg_proc p JOIN ns ON ns.oid = p.pronamespace
 WHERE NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_proc'::regclass AND ext.objid = p.oid)
UNION ALL
SELECT CASE t.typtype WHEN 'e' THEN 'enum ' WHEN 'd' THEN 'domain ' ELSE 'range ' END
           || pg_catalog.format('%I.%I', ns.nspname, t.typname),
       pg_catalog.concat_ws(' ',
           (SELECT pg_catalog.string_agg(pg_catalog.quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
              FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid),
           CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END,
           CASE WHEN t.typnotnull THEN 'not null' END,
           'default ' || t.typdefault,
           (SELECT 'subtype ' || rg.rngsubtype::regtype::text FROM pg_catalog.pg_range rg WHERE rg.rngtypid = t.oid),
           'acl', t.typacl::text,
           'comment', pg_catalog.obj_description(t.oid, 'pg_type'))
  FROM pg_catalog.pg_type t JOIN ns ON ns.oid = t.typnamespace
 WHERE t.typtype IN ('e', 'd', 'r')
   AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_catalog.pg_type'::regclass AND ext.objid = t.oid)
UNION ALL
SELECT 'statistics ' || pg_catalog.format('%I.%I', ns.nspname, st.stxname),
       pg_catalog.pg_get_statisticsobjdef(st.oid)
  FROM pg_catalog.pg_statistic_ext st JOIN ns ON ns.oid = st.stxnamespace
UNION ALL
SELECT 'extension ' || pg_catalog.quote_ident(x.extname),
       'version ' || x.extversion || ' schema ' || pg_catalog.quote_ident(n.nspname)
  FROM pg_catalog.pg_extension x JOIN pg_catalog.pg_namespace n ON n.oid = x.extnamespace
UNION ALL
SELECT 'policy ' || rel.name || '.' || pg_catalog.quote_ident(pol.polname),
       pg_catalog.concat_ws(' ', 'for', pol.polcmd::text,
           CASE WHEN pol.polpermissive THEN 'permissive' ELSE 'restrictive' END,
           'to', (SELECT pg_catalog.string_agg(CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END, ', ' ORDER BY 1)
                    FROM pg_catalog.unnest(pol.polroles) AS r),
           'using', pg_catalog.pg_get_expr(pol.polqual, pol.polrelid),
           'with check', pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid))
  FROM pg_catalog.pg_policy pol JOIN rel ON rel.oid = pol.polrelid
UNION ALL
SELECT 'rule ' || rel.name || '.' || pg_catalog.quote_ident(rw.rulename), pg_catalog.pg_get_ruledef(rw.oid)
  FROM pg_catalog.pg_rewrite rw JOIN rel ON rel.oid = rw.ev_class
 WHERE rw.rulename <> '_RETURN'
UNION ALL
SELECT 'default privileges of ' || da.defaclrole::regrole::text
           || COALESCE(' in schema ' || pg_catalog.quote_ident(n.nspname), '') || ' on ' || da.defaclobjtype::text,
       da.defaclacl::text
  FROM pg_catalog.pg_default_acl da LEFT JOIN pg_catalog.pg_namespace n ON n.oid = da.defaclnamespace
UNION ALL
SELECT 'row count of ' || rel.name,
       (pg_catalog.xpath('/row/n/text()',
            pg_catalog.query_to_xml(pg_catalog.format('SELECT count(*) AS n FROM ONLY %I.%I', rel.nspname, rel.relname),
                                    false, true, '')))[1]::text
  FROM rel
 WHERE rel.relkind = 'r'
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(objects: &[(&str, &str)]) -> Snapshot {
        Snapshot::from_objects(objects.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn equal_snapshots_have_no_differences() {
        let a = snapshot(&[("table public.a", ""), ("column public.a.id", "bigint")]);
        assert!(a.differences(&a.clone()).is_empty());
    }

    #[test]
    fn a_whole_table_stands_for_its_parts() {
        let expected = snapshot(&[("table public.a", ""), ("column public.a.id", "bigint")]);
        let found = snapshot(&[
            ("table public.ab", ""),
            ("column public.ab.id", "bigint"),
            ("constraint public.ab.ab_pkey", "PRIMARY KEY (id)"),
            ("row count of public.ab", "0"),
            (
                "index public.ab_pkey",
                "CREATE UNIQUE INDEX ab_pkey ON public.ab USING btree (id)",
            ),
        ]);
        let differences = expected.differences(&found);
        let shown: Vec<String> = condensed(&differences)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "index public.ab_pkey is left over",
                "table public.a is missing",
                "table public.ab is left over",
            ]
        );
    }

    #[test]
    fn differences_are_sorted_and_named() {
        let expected = snapshot(&[
            ("column public.a.id", "bigint"),
            (
                "index public.a_idx",
                "CREATE INDEX a_idx ON public.a USING btree (id)",
            ),
            ("table public.a", ""),
        ]);
        let found = snapshot(&[
            ("column public.a.id", "integer"),
            ("column public.a.note", "text"),
            ("table public.a", ""),
        ]);
        let shown: Vec<String> = expected
            .differences(&found)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "column public.a.id differs (expected `bigint`, found `integer`)",
                "column public.a.note is left over",
                "index public.a_idx is missing",
            ]
        );
    }
}
