//! Multi-row writes for projectors that apply a run of events at once.
//!
//! A replay (a rebuild, a restore, a pipeline catching up after a burst) is
//! mostly events that only add rows: a household created, a patient
//! registered, a visit scheduled, a record written. Written one statement per
//! event, every row pays a round trip to the read store (on SQLite a hand-off
//! to sqlx's worker thread and back, on MySQL a network round trip). [`Rows`]
//! collects such rows and writes them as a few multi-row `INSERT`s.
//!
//! The projector decides when a buffer must be written: before any statement
//! that could read or change what it holds (see `Projector::apply_all`), so
//! the tables end exactly as one-by-one application leaves them.

use std::sync::Arc;

use async_trait::async_trait;
use sqlx::any::AnyArguments;
use sqlx::{AnyConnection, Arguments};

use crate::projector::{ProjectionError, StoredEvent};

/// A projector's rows waiting to be written, for one run of events.
#[async_trait]
pub trait Buffer: Send {
    /// Takes `e` into the rows (or ignores it, if the projector does), or
    /// returns false: `e` must then be applied on its own, after a flush.
    async fn take(&mut self, c: &mut AnyConnection, e: &StoredEvent) -> Result<bool, ProjectionError>;
    /// Writes every waiting row.
    async fn flush(&mut self, c: &mut AnyConnection) -> Result<(), ProjectionError>;
    /// Applies an event the rows do not take.
    async fn apply_one(&mut self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError>;
}

/// Applies a run of events through `buffer`: what it takes is written in
/// multi-row statements, and before any event it does not take, everything
/// waiting is written, so the tables end as one-by-one application leaves them.
pub async fn apply_buffered(
    c: &mut AnyConnection,
    events: &[&StoredEvent],
    buffer: &mut dyn Buffer,
) -> Result<(), ProjectionError> {
    for e in events {
        if !buffer.take(c, e).await? {
            buffer.flush(c).await?;
            buffer.apply_one(c, e).await?;
        }
    }
    buffer.flush(c).await
}

/// One column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(Option<String>),
    /// Text many rows share (a household's id in each of its search grams).
    Shared(Arc<str>),
    Int(Option<i64>),
    Real(Option<f64>),
}

impl Cell {
    /// Binds the value, text by reference (no copy before the driver's).
    fn add_to<'q>(&'q self, args: &mut AnyArguments<'q>) -> Result<(), sqlx::Error> {
        match self {
            Cell::Text(v) => args.add(v.as_deref()),
            Cell::Shared(v) => args.add(&**v),
            Cell::Int(v) => args.add(*v),
            Cell::Real(v) => args.add(*v),
        }
        .map_err(sqlx::Error::Encode)
    }
}

impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(Some(v))
    }
}
impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(Some(v.to_string()))
    }
}
impl From<&String> for Cell {
    fn from(v: &String) -> Self {
        Cell::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Cell {
    fn from(v: Option<String>) -> Self {
        Cell::Text(v)
    }
}
impl From<&Option<String>> for Cell {
    fn from(v: &Option<String>) -> Self {
        Cell::Text(v.clone())
    }
}
impl From<Arc<str>> for Cell {
    fn from(v: Arc<str>) -> Self {
        Cell::Shared(v)
    }
}
impl From<i64> for Cell {
    fn from(v: i64) -> Self {
        Cell::Int(Some(v))
    }
}
impl From<Option<i64>> for Cell {
    fn from(v: Option<i64>) -> Self {
        Cell::Int(v)
    }
}
impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::Real(Some(v))
    }
}
impl From<Option<f64>> for Cell {
    fn from(v: Option<f64>) -> Self {
        Cell::Real(v)
    }
}

/// Rows per statement at most. A run is split into statements of multiples of
/// [`EXACT_BELOW`] rows and one of whatever is left below that, so a table has
/// at most 31 statement shapes (each prepared once per connection) whatever
/// the run's length, and any run up to this many rows takes two statements
/// at most (a live batch of a few events: one).
const MAX_ROWS: usize = 256;
/// Fewer rows than this go in one statement of exactly that many.
const EXACT_BELOW: usize = 16;
/// Bind parameters per statement at most (SQLite allows 32,766, MySQL 65,535).
const MAX_PARAMS: usize = 16_000;

/// Rows for one table, written as multi-row `INSERT`s by [`Rows::flush`].
pub struct Rows {
    /// `INSERT [IGNORE] INTO t (a, b, …)`.
    head: String,
    /// `(?, ?, …)`: one row's placeholders, with any constant columns.
    row: String,
    width: usize,
    cells: Vec<Cell>,
    /// An insert-or-ignore: a row written twice is written once, so a run's
    /// remainder is padded with copies of its last row up to a multiple of
    /// [`EXACT_BELOW`] (one statement where two were needed, same shapes).
    ignores_duplicates: bool,
    /// Rows per statement at most ([`MAX_ROWS`] unless set).
    most: usize,
}

impl Rows {
    /// Rows of `INSERT INTO {table} ({columns}) VALUES {row}`, where `row` is
    /// one row's value list (`(?, ?, 'active', ?)`: constants allowed); its
    /// number of `?` is the number of cells per row. `insert` is `INSERT` or
    /// the dialect's insert-or-ignore.
    pub fn new(insert: &str, table: &str, columns: &str, row: &str) -> Self {
        Rows {
            head: format!("{insert} INTO {table} ({columns}) VALUES "),
            row: row.to_string(),
            width: row.matches('?').count(),
            cells: Vec::new(),
            ignores_duplicates: insert.contains("IGNORE"),
            most: MAX_ROWS,
        }
    }

    /// As many rows per statement as the bind parameters allow, for a bulk
    /// load of one table (fewer statements, so fewer hand-offs to the driver
    /// and round trips; a long run of rows, so few shapes).
    pub fn in_long_statements(mut self) -> Self {
        self.most = usize::MAX;
        self
    }

    /// Adds a row; its cells in the order of the row's placeholders.
    pub fn push<const N: usize>(&mut self, cells: [Cell; N]) {
        assert_eq!(N, self.width, "a row of {} has {} placeholders", self.head, self.width);
        self.cells.extend(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The cell of waiting row `row` (in the order pushed) at placeholder
    /// `column`, to change a row before it is written.
    pub fn cell_mut(&mut self, row: usize, column: usize) -> &mut Cell {
        assert!(column < self.width, "{} has {} placeholders", self.head, self.width);
        &mut self.cells[row * self.width + column]
    }

    /// Rows one statement holds at most.
    pub fn statement_rows(&self) -> usize {
        self.most.min(MAX_PARAMS / self.width.max(1)).max(1)
    }

    /// Rows waiting.
    pub fn len(&self) -> usize {
        self.cells.len() / self.width.max(1)
    }

    /// The statement of `n` rows.
    pub fn statement(&self, n: usize) -> String {
        let mut sql = String::with_capacity(self.head.len() + n * (self.row.len() + 2));
        sql.push_str(&self.head);
        for i in 0..n {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&self.row);
        }
        sql
    }

    /// Writes every waiting row and empties the buffer.
    pub async fn flush(&mut self, c: &mut AnyConnection) -> Result<(), sqlx::Error> {
        if self.width == 0 {
            self.cells.clear();
            return Ok(());
        }
        let most = self.statement_rows();
        if self.ignores_duplicates && !self.cells.is_empty() {
            let rows = self.len();
            let padded = padded(rows, most);
            let last = self.cells[(rows - 1) * self.width..].to_vec();
            for _ in rows..padded {
                self.cells.extend(last.iter().cloned());
            }
        }
        let mut rest: &[Cell] = &self.cells;
        while !rest.is_empty() {
            let n = chunk(rest.len() / self.width, most);
            let (now, later) = rest.split_at(n * self.width);
            let sql = self.statement(n);
            let mut args = AnyArguments::default();
            for cell in now {
                cell.add_to(&mut args)?;
            }
            sqlx::query_with(&sql, args).execute(&mut *c).await?;
            rest = later;
        }
        // Emptied only once written: a failed write leaves the rows (and the
        // transaction is rolled back by its owner).
        self.cells.clear();
        Ok(())
    }
}

/// The rows of the next statement, with `left` rows waiting and at most
/// `most` per statement: `most`, else the largest multiple of [`EXACT_BELOW`]
/// that fits, so statement shapes repeat, else (fewer) all of them.
fn chunk(left: usize, most: usize) -> usize {
    if left >= most {
        most
    } else if left < EXACT_BELOW {
        left
    } else {
        left - left % EXACT_BELOW
    }
}

/// Rows an insert-or-ignore run of `rows` is padded to: up to the next
/// multiple of [`EXACT_BELOW`] when that fits in the run's last statement.
fn padded(rows: usize, most: usize) -> usize {
    let last = rows % most;
    if last <= EXACT_BELOW {
        return rows;
    }
    let up = last.div_ceil(EXACT_BELOW) * EXACT_BELOW;
    if up > most {
        rows
    } else {
        rows - last + up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(mut left: usize, most: usize) -> Vec<usize> {
        let mut out = Vec::new();
        while left > 0 {
            let n = chunk(left, most);
            out.push(n);
            left -= n;
        }
        out
    }

    #[test]
    fn a_run_is_split_into_few_statement_shapes() {
        assert_eq!(chunks(1, 256), [1]);
        assert_eq!(chunks(6, 256), [6], "a live batch: one statement");
        assert_eq!(chunks(15, 256), [15]);
        assert_eq!(chunks(16, 256), [16]);
        assert_eq!(chunks(42, 256), [32, 10]);
        assert_eq!(chunks(120, 256), [112, 8]);
        assert_eq!(chunks(300, 256), [256, 32, 12]);
        assert_eq!(chunks(600, 256), [256, 256, 80, 8]);
        assert_eq!(chunks(20, 4), [4, 4, 4, 4, 4], "the parameter limit caps a statement");
        let mut shapes: Vec<usize> = (1..2000).flat_map(|n| chunks(n, 256)).collect();
        shapes.sort_unstable();
        shapes.dedup();
        assert_eq!(shapes.len(), 31, "{shapes:?}");
    }

    #[test]
    fn an_insert_or_ignore_run_is_padded_to_one_statement_of_a_repeated_shape() {
        assert_eq!(padded(6, 256), 6, "below 16: exactly");
        assert_eq!(padded(16, 256), 16);
        assert_eq!(padded(42, 256), 48);
        assert_eq!(chunks(padded(42, 256), 256), [48]);
        assert_eq!(padded(130, 256), 144);
        assert_eq!(padded(250, 256), 256);
        assert_eq!(
            padded(300, 256),
            304,
            "after a full statement, 44 rows become one of 48"
        );
        assert_eq!(padded(20, 4), 20, "the parameter limit caps a statement");
        for n in 1..2000 {
            let p = padded(n, 256);
            assert!(p >= n && p - n < EXACT_BELOW, "{n} -> {p}");
            assert!(chunks(p, 256).len() <= chunks(n, 256).len(), "{n} -> {p}");
        }
    }

    #[test]
    fn a_row_has_as_many_cells_as_placeholders_including_constants_around_them() {
        let mut rows = Rows::new("INSERT", "t", "a, b, c", "(?, 'x', ?)");
        rows.push(["1".into(), 2i64.into()]);
        rows.push([Cell::Text(None), Cell::Int(None)]);
        assert_eq!(rows.len(), 2);
        assert!(!rows.is_empty());
    }

    /// 300 rows: statements of 256, 32 and 12 rows, every row as pushed.
    #[tokio::test]
    async fn every_row_is_written_once_in_order_whatever_the_run_length() {
        use sqlx::{Connection, Row};
        sqlx::any::install_default_drivers();
        let mut c = AnyConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, kind TEXT NOT NULL, score REAL)")
            .execute(&mut c)
            .await
            .unwrap();
        let mut rows = Rows::new("INSERT", "t", "id, name, kind, score", "(?, ?, 'k', ?)");
        for i in 0..300i64 {
            let name = (i % 7 != 0).then(|| format!("n{i}"));
            rows.push([i.into(), name.into(), (i % 3 == 0).then_some(i as f64 / 2.0).into()]);
        }
        rows.flush(&mut c).await.unwrap();
        assert!(rows.is_empty());
        rows.flush(&mut c).await.unwrap();
        let got = sqlx::query("SELECT id, name, kind, score FROM t ORDER BY id")
            .fetch_all(&mut c)
            .await
            .unwrap();
        assert_eq!(got.len(), 300);
        for (i, r) in got.iter().enumerate() {
            let i = i as i64;
            assert_eq!(r.get::<i64, _>(0), i);
            assert_eq!(r.get::<Option<String>, _>(1), (i % 7 != 0).then(|| format!("n{i}")));
            assert_eq!(r.get::<String, _>(2), "k");
            assert_eq!(r.get::<Option<f64>, _>(3), (i % 3 == 0).then_some(i as f64 / 2.0));
        }
    }

    #[test]
    #[should_panic(expected = "placeholders")]
    fn a_row_of_the_wrong_width_is_refused() {
        let mut rows = Rows::new("INSERT", "t", "a, b", "(?, ?)");
        rows.push(["1".into()]);
    }
}
