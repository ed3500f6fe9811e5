//! CSV cells a spreadsheet will not run: a cell starting with `=`, `+`, `-`, `@`, a tab or
//! a carriage return is a formula to Excel and LibreOffice (`=HYPERLINK(…)` in a contact's
//! name becomes a link that sends data away). Every CSV zerotouch writes passes its cells
//! through `neutral`, which puts a `'` in front of them — the apostrophe spreadsheets
//! themselves use for "text"; the CSVs zerotouch reads back (exports, the phone directory)
//! pass theirs through `restore`, so a value survives the round trip exactly. Pure.

use std::borrow::Cow;

/// First characters that make a cell a formula.
const TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

fn is_trigger(c: Option<char>) -> bool {
    c.is_some_and(|c| TRIGGERS.contains(&c))
}

/// The cell as written: a `'` in front of one a spreadsheet would evaluate, and in front of
/// one that already looks neutralised (so `restore` gives back exactly the value).
pub fn neutral(cell: &str) -> Cow<'_, str> {
    let mut chars = cell.chars();
    let first = chars.next();
    let needs = is_trigger(first)
        || (first == Some('\'') && {
            let second = chars.next();
            is_trigger(second) || second == Some('\'')
        });
    if needs {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The value of a cell `neutral` wrote (other cells are returned as they are).
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if is_trigger(rest.chars().next()) || rest.starts_with('\'') => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_other_values_left_alone() {
        for (value, written) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+4930123", "'+4930123"),
            ("-5", "'-5"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("'=x", "''=x"),
            ("''", "'''"),
            ("plain", "plain"),
            ("'quoted", "'quoted"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(neutral(value), written, "{value:?}");
            assert_eq!(restore(&neutral(value)), value, "{value:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn every_value_survives_the_round_trip_and_never_starts_a_formula(v in "\\PC{0,12}") {
            let w = neutral(&v);
            proptest::prop_assert_eq!(restore(&w), v.as_str());
            proptest::prop_assert!(!is_trigger(w.chars().next()));
        }
    }
}
