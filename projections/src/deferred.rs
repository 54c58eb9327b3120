//! Secondary indexes a rebuild's bulk load builds after its rows.
//!
//! A read model's list indexes (a recorder's families, the households by
//! creation or name, a recorder's visits) take their rows in another order
//! than the load writes them, so each row written lands in a leaf of its own
//! in each such index: at 333,334 patients (1,029,448 events) SQLite wrote
//! 5.4 GB of pages over the replay for a 0.6 GB file, each page again at
//! every batch's commit. Built after the load, an index is one sorted pass
//! over its table. Only indexes that the projectors' own writes never look
//! rows up through may wait ([`crate::Projector::deferred_indexes`]): the
//! load's updates and deletes keep theirs.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::projector::Projector;
use crate::rebuild::quote;
use crate::store::{Dialect, ReadStore, RowExt};

/// The statements that build again the indexes [`ReadStore::defer_indexes`]
/// dropped, in order.
#[derive(Debug, Default)]
#[must_use = "the dropped indexes are built again by ReadStore::restore_indexes"]
pub struct DeferredIndexes(Vec<String>);

impl DeferredIndexes {
    /// How many statements build them again.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One column of a MySQL index, as `information_schema.STATISTICS` gives it.
#[derive(Debug, Clone, PartialEq)]
struct Part {
    table: String,
    index: String,
    column: String,
    /// A prefix length.
    prefix: Option<i64>,
    descending: bool,
}

/// Per table, the `ALTER TABLE` that drops its indexes and the one that adds
/// them again, from their columns in index order (pure).
fn mysql_statements(parts: &[Part]) -> Vec<(String, String)> {
    let mut by_table: BTreeMap<&str, BTreeMap<&str, Vec<&Part>>> = BTreeMap::new();
    for p in parts {
        by_table
            .entry(&p.table)
            .or_default()
            .entry(&p.index)
            .or_default()
            .push(p);
    }
    by_table
        .into_iter()
        .map(|(table, indexes)| {
            let drops: Vec<String> = indexes.keys().map(|i| format!("DROP INDEX {}", quote(i))).collect();
            let adds: Vec<String> = indexes
                .iter()
                .map(|(index, cols)| {
                    let cols: Vec<String> = cols
                        .iter()
                        .map(|c| {
                            let mut col = quote(&c.column);
                            if let Some(n) = c.prefix {
                                col.push_str(&format!("({n})"));
                            }
                            if c.descending {
                                col.push_str(" DESC");
                            }
                            col
                        })
                        .collect();
                    format!("ADD INDEX {} ({})", quote(index), cols.join(", "))
                })
                .collect();
            (
                format!("ALTER TABLE {} {}", quote(table), drops.join(", ")),
                format!("ALTER TABLE {} {}", quote(table), adds.join(", ")),
            )
        })
        .collect()
}

impl ReadStore {
    /// Drops the indexes `projectors` say may wait
    /// ([`Projector::deferred_indexes`]) from this store, a rebuild's shadow
    /// before its load, and returns how to build them again. An index this
    /// store does not have is skipped; a unique one is never dropped.
    pub async fn defer_indexes(&self, projectors: &[Arc<dyn Projector>]) -> Result<DeferredIndexes, sqlx::Error> {
        let names: Vec<&str> = projectors
            .iter()
            .flat_map(|p| p.deferred_indexes().iter().copied())
            .collect();
        if names.is_empty() {
            return Ok(DeferredIndexes::default());
        }
        let marks = vec!["?"; names.len()].join(", ");
        match self.dialect() {
            Dialect::Sqlite => {
                let sql = format!(
                    "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL
                     AND sql NOT LIKE 'CREATE UNIQUE%' AND name IN ({marks}) ORDER BY name"
                );
                let mut q = sqlx::query(&sql);
                for n in &names {
                    q = q.bind(*n);
                }
                let rows = q.fetch_all(self.writer()).await?;
                let mut again = Vec::with_capacity(rows.len());
                for r in rows {
                    let name = r.text("name")?;
                    sqlx::query(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))
                        .execute(self.writer())
                        .await?;
                    again.push(r.text("sql")?);
                }
                Ok(DeferredIndexes(again))
            }
            Dialect::MySql => {
                let sql = format!(
                    "SELECT TABLE_NAME AS tbl, INDEX_NAME AS idx, COLUMN_NAME AS col, SUB_PART AS prefix,
                            COLLATION AS dir
                     FROM information_schema.STATISTICS
                     WHERE TABLE_SCHEMA = DATABASE() AND NON_UNIQUE = 1 AND INDEX_NAME IN ({marks})
                     ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
                );
                let mut q = sqlx::query(&sql);
                for n in &names {
                    q = q.bind(*n);
                }
                let mut parts = Vec::new();
                for r in q.fetch_all(self.writer()).await? {
                    parts.push(Part {
                        table: r.text("tbl")?,
                        index: r.text("idx")?,
                        column: r.text("col")?,
                        prefix: r.opt_int("prefix")?,
                        descending: r.opt_text("dir")?.as_deref() == Some("D"),
                    });
                }
                let mut again = Vec::new();
                for (drop, add) in mysql_statements(&parts) {
                    sqlx::query(&drop).execute(self.writer()).await?;
                    again.push(add);
                }
                Ok(DeferredIndexes(again))
            }
        }
    }

    /// Builds the indexes [`ReadStore::defer_indexes`] dropped: on MySQL
    /// each table's on a connection of its own, side by side (each `ALTER`
    /// sorts on one thread of MariaDB's); SQLite has one writer.
    pub async fn restore_indexes(&self, deferred: DeferredIndexes) -> Result<(), sqlx::Error> {
        match self.dialect() {
            Dialect::Sqlite => {
                for sql in deferred.0 {
                    sqlx::query(&sql).execute(self.writer()).await?;
                }
            }
            Dialect::MySql => {
                let mut builds = tokio::task::JoinSet::new();
                for sql in deferred.0 {
                    let store = self.clone();
                    builds.spawn(async move { sqlx::query(&sql).execute(store.writer()).await.map(|_| ()) });
                }
                while let Some(built) = builds.join_next().await {
                    built.map_err(|e| sqlx::Error::Protocol(format!("an index build stopped: {e}")))??;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{mysql_statements, Part};

    fn part(table: &str, index: &str, column: &str, prefix: Option<i64>, descending: bool) -> Part {
        Part {
            table: table.into(),
            index: index.into(),
            column: column.into(),
            prefix,
            descending,
        }
    }

    #[test]
    fn a_tables_indexes_are_dropped_and_added_in_one_statement_each_with_their_columns_in_order() {
        let parts = [
            part("families", "families_created", "created_at", None, false),
            part("families", "families_name", "family_name", Some(20), false),
            part("subscriptions", "subscriptions_recorder", "recorder_id", None, false),
            part("subscriptions", "subscriptions_recorder", "status", None, false),
            part("subscriptions", "subscriptions_recorder", "end_date", None, true),
        ];
        assert_eq!(
            mysql_statements(&parts),
            vec![
                (
                    "ALTER TABLE `families` DROP INDEX `families_created`, DROP INDEX `families_name`".to_string(),
                    "ALTER TABLE `families` ADD INDEX `families_created` (`created_at`), \
                     ADD INDEX `families_name` (`family_name`(20))"
                        .to_string()
                ),
                (
                    "ALTER TABLE `subscriptions` DROP INDEX `subscriptions_recorder`".to_string(),
                    "ALTER TABLE `subscriptions` ADD INDEX `subscriptions_recorder` \
                     (`recorder_id`, `status`, `end_date` DESC)"
                        .to_string()
                ),
            ]
        );
    }

    #[test]
    fn nothing_deferred_gives_no_statement() {
        assert!(mysql_statements(&[]).is_empty());
    }
}
