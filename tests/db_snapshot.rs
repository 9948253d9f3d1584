//! The schema snapshot behind `landlord catalog test`, against the real PostgreSQL: every kind of object a
//! down migration can forget or change is seen, and what a down cannot help (column order) is not.
//! Each change runs in a transaction that is rolled back, so all cases share one tenant database.

mod support;

use landlord::db::snapshot::{Difference, snapshot};
use support::db::{TestTenant, databases};

const BASE: &str = "
CREATE TYPE card_state AS ENUM ('draft', 'issued');
CREATE DOMAIN title_text AS text CHECK (VALUE <> '');
CREATE TABLE cards (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    state card_state NOT NULL DEFAULT 'draft', title title_text NOT NULL, note text);
CREATE INDEX cards_title_idx ON cards (lower(title));
CREATE SEQUENCE card_numbers START 1000;
CREATE FUNCTION card_title(c cards) RETURNS text LANGUAGE sql AS 'SELECT c.title';
CREATE VIEW issued_cards AS SELECT id, title FROM cards WHERE state = 'issued';
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER cards_touch BEFORE UPDATE ON cards FOR EACH ROW EXECUTE FUNCTION touch();
COMMENT ON TABLE cards IS 'digital cards';
";

fn short(differences: &[Difference]) -> Vec<String> {
    differences
        .iter()
        .map(|d| match d {
            Difference::Missing(object) => format!("missing {object}"),
            Difference::Extra(object) => format!("extra {object}"),
            Difference::Changed { object, .. } => format!("changed {object}"),
        })
        .collect()
}

#[tokio::test]
async fn every_kind_of_change_is_seen_and_column_order_is_not() {
    let databases = databases();
    let tenant = TestTenant::provision(&databases, "snapshot", &[]).await;
    let mut conn = databases
        .tenant(&tenant.names, &tenant.password)
        .await
        .expect("connect as the tenant");
    sqlx::raw_sql(BASE)
        .execute(&mut *conn)
        .await
        .expect("base schema");
    let base = snapshot(&mut conn).await.expect("snapshot");
    assert!(base.len() > 15, "{base:?}");
    let role = tenant.names.role().as_str();

    let cases: Vec<(&str, Vec<String>)> = vec![
        ("SELECT 1", vec![]),
        (
            "ALTER TABLE cards DROP COLUMN note; ALTER TABLE cards ADD COLUMN note text",
            vec![],
        ),
        (
            "ALTER TABLE cards ALTER COLUMN note SET DEFAULT 'x'",
            vec!["changed column public.cards.note".into()],
        ),
        (
            "ALTER TABLE cards ALTER COLUMN note SET NOT NULL",
            vec!["changed column public.cards.note".into()],
        ),
        (
            "ALTER TABLE cards ALTER COLUMN note TYPE varchar(10)",
            vec!["changed column public.cards.note".into()],
        ),
        (
            "COMMENT ON COLUMN cards.note IS 'why'",
            vec!["changed column public.cards.note".into()],
        ),
        (
            "ALTER TABLE cards RENAME COLUMN note TO remark",
            vec![
                "missing column public.cards.note".into(),
                "extra column public.cards.remark".into(),
            ],
        ),
        (
            "ALTER TYPE card_state ADD VALUE 'void'",
            vec!["changed enum public.card_state".into()],
        ),
        (
            "ALTER DOMAIN title_text SET DEFAULT 'untitled'",
            vec!["changed domain public.title_text".into()],
        ),
        (
            "ALTER DOMAIN title_text ADD CONSTRAINT title_short CHECK (length(VALUE) < 100)",
            vec!["extra constraint public.title_text.title_short".into()],
        ),
        (
            "CREATE OR REPLACE FUNCTION card_title(c cards) RETURNS text LANGUAGE sql AS 'SELECT upper(c.title)'",
            vec!["changed function public.card_title(c cards)".into()],
        ),
        (
            "CREATE PROCEDURE tidy() LANGUAGE sql AS 'SELECT 1'",
            vec!["extra procedure public.tidy()".into()],
        ),
        (
            "CREATE OR REPLACE VIEW issued_cards AS SELECT id, title FROM cards WHERE state = 'draft'",
            vec!["changed view public.issued_cards".into()],
        ),
        (
            "CREATE MATERIALIZED VIEW card_count AS SELECT count(*) AS n FROM cards",
            vec![
                "extra column public.card_count.n".into(),
                "extra materialized view public.card_count".into(),
            ],
        ),
        (
            "ALTER SEQUENCE card_numbers INCREMENT 2",
            vec!["changed sequence public.card_numbers".into()],
        ),
        (
            "DROP TRIGGER cards_touch ON cards",
            vec!["missing trigger public.cards.cards_touch".into()],
        ),
        (
            "ALTER TABLE cards DISABLE TRIGGER cards_touch",
            vec!["changed trigger public.cards.cards_touch".into()],
        ),
        (
            "DROP INDEX cards_title_idx",
            vec!["missing index public.cards_title_idx".into()],
        ),
        (
            "ALTER TABLE cards ADD CONSTRAINT cards_note_check CHECK (note <> '')",
            vec!["extra constraint public.cards.cards_note_check".into()],
        ),
        (
            "COMMENT ON TABLE cards IS NULL",
            vec!["changed table public.cards".into()],
        ),
        (
            "GRANT SELECT ON cards TO PUBLIC",
            vec!["changed table public.cards".into()],
        ),
        (
            "ALTER TABLE cards ENABLE ROW LEVEL SECURITY; CREATE POLICY drafts ON cards USING (state = 'draft')",
            vec![
                "extra policy public.cards.drafts".into(),
                "changed table public.cards".into(),
            ],
        ),
        (
            "CREATE RULE keep AS ON DELETE TO cards DO INSTEAD NOTHING",
            vec!["extra rule public.cards.keep".into()],
        ),
        (
            "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC",
            vec![format!("extra default privileges of {role} on r")],
        ),
        (
            "CREATE STATISTICS cards_stats ON state, note FROM cards",
            vec!["extra statistics public.cards_stats".into()],
        ),
        ("CREATE SCHEMA extra", vec!["extra schema extra".into()]),
        (
            "CREATE TABLE extra_table (id int)",
            vec![
                "extra column public.extra_table.id".into(),
                "extra row count of public.extra_table".into(),
                "extra table public.extra_table".into(),
            ],
        ),
        (
            "INSERT INTO cards (title) VALUES ('a')",
            vec!["changed row count of public.cards".into()],
        ),
        // The extension's own types and functions belong to its entry.
        (
            "CREATE EXTENSION ltree",
            vec!["extra extension ltree".into()],
        ),
    ];

    let mut failures = Vec::new();
    for (change, expected) in cases {
        sqlx::raw_sql("BEGIN")
            .execute(&mut *conn)
            .await
            .expect("begin");
        sqlx::raw_sql(sqlx::AssertSqlSafe(change))
            .execute(&mut *conn)
            .await
            .unwrap_or_else(|e| panic!("{change}: {e}"));
        let changed = snapshot(&mut conn).await.expect("snapshot");
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut *conn)
            .await
            .expect("rollback");
        let found = short(&base.differences(&changed));
        if found != expected {
            failures.push(format!(
                "{change}:\n  expected {expected:?}\n  found    {found:?}"
            ));
        }
    }
    let again = snapshot(&mut conn).await.expect("snapshot");
    assert!(base.differences(&again).is_empty(), "not deterministic");
    conn.close().await.expect("close");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
