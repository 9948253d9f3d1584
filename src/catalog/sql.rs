//! A small SQL scanner: enough of PostgreSQL's lexical rules to split a migration into statements, so that
//! a `-- landlord:no-transaction` file can be held to exactly one statement (PostgreSQL runs several
//! statements of one simple query in an implicit transaction, which `CREATE INDEX CONCURRENTLY` refuses).
//!
//! Understood: `'...'` strings (with `''`), `E'...'` strings (with backslash escapes), `"..."` identifiers,
//! `$tag$...$tag$` dollar quotes, `--` line comments and nested `/* */` comments. Not understood: the
//! semicolons inside a `BEGIN ATOMIC ... END` function body, which split it like psql before version 14.

/// Where the scanner gave up: a quote or comment that never ends.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SqlScanError {
    #[error("a '...' string opened on line {line} is never closed")]
    UnterminatedString { line: usize },
    #[error("a \"...\" identifier opened on line {line} is never closed")]
    UnterminatedIdentifier { line: usize },
    #[error("a {tag} dollar quote opened on line {line} is never closed")]
    UnterminatedDollarQuote { tag: String, line: usize },
    #[error("a /* comment opened on line {line} is never closed")]
    UnterminatedComment { line: usize },
}

/// The statements of a script, each trimmed and without its `;`. Pieces holding only whitespace and
/// comments are not statements.
pub fn split_statements(sql: &str) -> Result<Vec<&str>, SqlScanError> {
    let b = sql.as_bytes();
    let line_of = |pos: usize| b[..pos].iter().filter(|&&c| c == b'\n').count() + 1;
    let mut statements = Vec::new();
    let mut start = 0;
    let mut has_content = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        match c {
            b'-' if next == Some(b'-') => {
                i = b[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| i + p);
                continue;
            }
            b'/' if next == Some(b'*') => {
                i = skip_block_comment(b, i)
                    .ok_or(SqlScanError::UnterminatedComment { line: line_of(i) })?;
                continue;
            }
            b'\'' => {
                // E'...' (the E not ending a longer word) takes backslash escapes.
                let escapes = i >= 1
                    && matches!(b[i - 1], b'E' | b'e')
                    && (i < 2 || !is_ident_byte(b[i - 2]));
                i = skip_quoted(b, i, b'\'', escapes)
                    .ok_or(SqlScanError::UnterminatedString { line: line_of(i) })?;
                has_content = true;
                continue;
            }
            b'"' => {
                i = skip_quoted(b, i, b'"', false)
                    .ok_or(SqlScanError::UnterminatedIdentifier { line: line_of(i) })?;
                has_content = true;
                continue;
            }
            // `$` inside a word (`a$b`) or before a digit (`$1`) does not open a dollar quote.
            b'$' if i == 0 || !is_ident_byte(b[i - 1]) => {
                if let Some(tag_end) = dollar_tag_end(b, i) {
                    let tag = &sql[i..=tag_end];
                    let body = tag_end + 1;
                    let close = sql[body..].find(tag).ok_or_else(|| {
                        SqlScanError::UnterminatedDollarQuote {
                            tag: tag.to_string(),
                            line: line_of(i),
                        }
                    })?;
                    i = body + close + tag.len();
                    has_content = true;
                    continue;
                }
                has_content = true;
            }
            b';' => {
                if has_content {
                    statements.push(sql[start..i].trim());
                }
                start = i + 1;
                has_content = false;
            }
            c if !c.is_ascii_whitespace() => has_content = true,
            _ => {}
        }
        i += 1;
    }
    if has_content {
        statements.push(sql[start..].trim());
    }
    Ok(statements)
}

/// How many statements a script holds; see [`split_statements`].
pub fn count_statements(sql: &str) -> Result<usize, SqlScanError> {
    split_statements(sql).map(|s| s.len())
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Index just past the `*/` closing the comment opened at `open`; PostgreSQL nests block comments.
fn skip_block_comment(b: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i + 1 < b.len() {
        match (b[i], b[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Index just past the quote closing the one at `open`; a doubled quote stands for itself.
fn skip_quoted(b: &[u8], open: usize, quote: u8, backslash_escapes: bool) -> Option<usize> {
    let mut i = open + 1;
    while i < b.len() {
        if backslash_escapes && b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return Some(i + 1);
        }
        i += 1;
    }
    None
}

/// For a `$` at `open`, the index of the `$` ending a dollar-quote tag (`$$` or `$name$`), if it is one.
fn dollar_tag_end(b: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    while i < b.len() {
        let c = b[i];
        if c == b'$' {
            return Some(i);
        }
        let allowed = if i == open + 1 {
            c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
        } else {
            c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
        };
        if !allowed {
            return None;
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_statements() {
        let cases: &[(&str, usize)] = &[
            ("", 0),
            ("  \n\t ", 0),
            (";;", 0),
            ("-- only a comment\n", 0),
            ("/* only a comment */", 0),
            ("SELECT 1", 1),
            ("SELECT 1;", 1),
            ("SELECT 1; SELECT 2;", 2),
            ("SELECT 1;\n-- trailing comment", 1),
            ("SELECT 1; /* trailing */ ;", 1),
            ("SELECT 'a;b';", 1),
            ("SELECT 'it''s; fine'; SELECT 2", 2),
            ("SELECT E'it\\'s; fine'; SELECT 2", 2),
            // Without E, a backslash is an ordinary character and the quote after it closes the string.
            ("SELECT 'a\\'; SELECT 2", 2),
            ("SELECT \"odd;name\" FROM t", 1),
            ("SELECT \"a\"\";b\" FROM t; SELECT 2", 2),
            ("SELECT 1 -- not; a statement\n; SELECT 2", 2),
            ("SELECT /* ; */ 1; SELECT /* nested /* ; */ still ; */ 2", 2),
            (
                "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; SELECT 2; $$ LANGUAGE sql;",
                1,
            ),
            (
                "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN $$;$$; END; $body$ LANGUAGE plpgsql; SELECT 1;",
                2,
            ),
            ("PREPARE p AS SELECT $1; EXECUTE p(1);", 2),
            ("SELECT a$b$c FROM t; SELECT 2", 2),
            (
                "-- landlord:no-transaction\nCREATE INDEX CONCURRENTLY t_a_idx ON t (a);\n",
                1,
            ),
            ("SELECT 'ünïcode; ok' ; SELECT 2", 2),
        ];
        for (sql, want) in cases {
            assert_eq!(count_statements(sql), Ok(*want), "{sql:?}");
        }
    }

    #[test]
    fn returns_statement_text() {
        let sql = "CREATE TABLE a (x int);\n\n  -- why\nCREATE INDEX a_x ON a (x)  ;  ";
        assert_eq!(
            split_statements(sql),
            Ok(vec![
                "CREATE TABLE a (x int)",
                "-- why\nCREATE INDEX a_x ON a (x)"
            ])
        );
    }

    #[test]
    fn reports_what_never_closes() {
        let cases: &[(&str, SqlScanError)] = &[
            (
                "SELECT 1;\nSELECT 'open",
                SqlScanError::UnterminatedString { line: 2 },
            ),
            (
                "SELECT \"open",
                SqlScanError::UnterminatedIdentifier { line: 1 },
            ),
            (
                "\n\nDO $x$ BEGIN END $y$;",
                SqlScanError::UnterminatedDollarQuote {
                    tag: "$x$".into(),
                    line: 3,
                },
            ),
            (
                "SELECT 1; /* a /* b */",
                SqlScanError::UnterminatedComment { line: 1 },
            ),
            ("SELECT E'\\'", SqlScanError::UnterminatedString { line: 1 }),
        ];
        for (sql, want) in cases {
            assert_eq!(count_statements(sql).as_ref(), Err(want), "{sql:?}");
        }
    }
}
