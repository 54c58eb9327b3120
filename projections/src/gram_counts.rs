//! `family_gram_counts`: how many households hold each search gram, kept by
//! the families projector beside `family_grams`, in the same transaction.
//!
//! An admin's search reads them to choose the pair it walks (the rarest) and,
//! when that pair is common, to estimate its total from the part it walked
//! (`families::Families::list`): a few reads by key, where counting each
//! pair's rows read up to 50,000 index entries a pair (about 4.5 ms of the
//! 6 ms a common name's search took at 1,000,000 patients).
//!
//! The counts follow the rows exactly: every writer of the grams knows which
//! rows it adds or takes away (a new household's grams, a patient's grams the
//! household did not hold yet, the grams a change of texts adds or removes;
//! see `families`), and a rebuild counts the rows it loads. A gram no
//! household holds has no row, as after a rebuild.

use std::collections::BTreeMap;

use sqlx::AnyConnection;

use crate::store::Dialect;

/// Counts changed per statement (two binds each: far below either store's limit).
const ROWS_PER_STATEMENT: usize = 500;

/// The text a gram is counted under. MySQL compares grams ignoring trailing
/// spaces, so "e " and "e" are one row of `family_grams` there, and one of
/// `family_gram_counts`; SQLite compares them as they are.
pub(crate) fn counted_as(gram: &str, dialect: Dialect) -> &str {
    match dialect {
        Dialect::MySql => gram.trim_end_matches(' '),
        Dialect::Sqlite => gram,
    }
}

/// Changes to the counts, by gram ([`counted_as`]), written by [`GramCounts::flush`].
#[derive(Debug, Default)]
pub(crate) struct GramCounts(BTreeMap<String, i64>);

impl GramCounts {
    /// `households` more (or fewer, when negative) households hold `gram`.
    pub(crate) fn add(&mut self, gram: &str, households: i64) {
        match self.0.get_mut(gram) {
            Some(n) => *n += households,
            None => {
                self.0.insert(gram.to_string(), households);
            }
        }
    }

    /// Writes the changes (in the caller's transaction) and forgets them: each
    /// count moved by its change, and the grams no household holds any more
    /// deleted.
    pub(crate) async fn flush(&mut self, c: &mut AnyConnection) -> Result<(), sqlx::Error> {
        let changes: Vec<(String, i64)> = std::mem::take(&mut self.0)
            .into_iter()
            .filter(|(_, n)| *n != 0)
            .collect();
        let dialect = Dialect::of(c);
        for chunk in changes.chunks(ROWS_PER_STATEMENT) {
            let values = vec!["(?, ?)"; chunk.len()].join(", ");
            let sql = match dialect {
                Dialect::Sqlite => format!(
                    "INSERT INTO family_gram_counts (gram, households) VALUES {values}
                     ON CONFLICT (gram) DO UPDATE SET households = households + excluded.households"
                ),
                Dialect::MySql => format!(
                    "INSERT INTO family_gram_counts (gram, households) VALUES {values}
                     ON DUPLICATE KEY UPDATE households = households + VALUES(households)"
                ),
            };
            let mut q = sqlx::query(&sql);
            for (gram, n) in chunk {
                q = q.bind(gram.as_str()).bind(*n);
            }
            q.execute(&mut *c).await?;
        }
        let fewer: Vec<&str> = changes
            .iter()
            .filter(|(_, n)| *n < 0)
            .map(|(g, _)| g.as_str())
            .collect();
        for chunk in fewer.chunks(ROWS_PER_STATEMENT) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let sql = format!("DELETE FROM family_gram_counts WHERE households <= 0 AND gram IN ({marks})");
            let mut q = sqlx::query(&sql);
            for gram in chunk {
                q = q.bind(*gram);
            }
            q.execute(&mut *c).await?;
        }
        Ok(())
    }
}

/// Counts every gram of `family_grams` again, from its rows (in the caller's
/// transaction): for a fill that may have found some rows already there.
pub(crate) async fn recount(c: &mut AnyConnection) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM family_gram_counts").execute(&mut *c).await?;
    sqlx::query(
        "INSERT INTO family_gram_counts (gram, households) SELECT gram, COUNT(*) FROM family_grams GROUP BY gram",
    )
    .execute(&mut *c)
    .await?;
    Ok(())
}
