//! Markdown pieces every generated document shares: tables, code spans, one-line prose.

/// A Markdown table; `|` in a cell is escaped (GitHub reads `\|` as `|` inside code spans too).
pub(super) fn table(header: &[&str], rows: Vec<Vec<String>>) -> String {
    let line = |cells: Vec<String>| format!("| {} |\n", cells.join(" | "));
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out.push_str(&line(header.iter().map(|_| "---".to_string()).collect()));
    for row in rows {
        out.push_str(&line(
            row.into_iter().map(|c| c.replace('|', "\\|")).collect(),
        ));
    }
    out
}

/// Inline code, fenced so that backticks inside cannot end it.
pub(super) fn code(text: &str) -> String {
    let longest_run = text
        .split(|c| c != '`')
        .map(str::len)
        .max()
        .unwrap_or_default();
    let fence = "`".repeat(longest_run + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{text}{pad}{fence}")
}

pub(super) fn code_list(items: Option<&[String]>) -> String {
    let items: Vec<String> = items.unwrap_or_default().iter().map(|i| code(i)).collect();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// Prose on one line, `<` outside code spans escaped so that `tenant_<slug>` is not taken for an HTML tag.
pub(super) fn text(prose: &str) -> String {
    let line = prose.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        match c {
            '`' => in_code = !in_code,
            '<' if !in_code => out.push('\\'),
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_stay_one_table_cell() {
        assert_eq!(code("x `y` z"), "``x `y` z``");
        assert_eq!(
            text("database tenant_<slug>,\n  `tenant_<slug>`"),
            r"database tenant_\<slug>, `tenant_<slug>`"
        );
        assert_eq!(
            table(&["A", "B"], vec![vec![code("a || b"), "c".into()]]),
            "| A | B |\n| --- | --- |\n| `a \\|\\| b` | c |\n"
        );
    }
}
