//! Paging for list endpoints: `page` from 1, `limit` 1..=100 (default 20),
//! and the one way a list is queried: a [`Where`] holding only the conditions
//! asked for (never `? IS NULL OR …`, which defeats the indexes), bound once
//! and used for both the count and the page ([`ReadStore::page`]).

use serde::Serialize;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::{Query, QueryScalar};
use sqlx::{Any, AnyConnection};

use crate::store::ReadStore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageParams {
    pub page: u32,
    pub limit: u32,
}

impl Default for PageParams {
    fn default() -> Self {
        Self { page: 1, limit: 20 }
    }
}

impl PageParams {
    /// Validates raw query values; the error names the field.
    pub fn parse(page: Option<i64>, limit: Option<i64>) -> Result<Self, (&'static str, String)> {
        let page = page.unwrap_or(1);
        let limit = limit.unwrap_or(20);
        if !(1..=1_000_000).contains(&page) {
            return Err(("page", "page必须大于等于1".into()));
        }
        if !(1..=100).contains(&limit) {
            return Err(("limit", "limit必须在1到100之间".into()));
        }
        Ok(Self {
            page: page as u32,
            limit: limit as u32,
        })
    }
    pub fn offset(&self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.limit)
    }
    pub fn limit(&self) -> i64 {
        i64::from(self.limit)
    }
}

/// One page of a list, as returned by queries.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    /// False when `total` is not an exact count: a lower bound (a count that
    /// stopped at its cap: `families::SEARCH_TOTAL_CAP`, [`AUDIT_TOTAL_CAP`]),
    /// or a common search's estimate (`families::estimate`).
    pub total_exact: bool,
    pub page: u32,
    pub limit: u32,
}

impl<T> Page<T> {
    /// The page `params` asked for, with `items` and an exact `total`.
    pub fn exact(items: Vec<T>, total: i64, params: PageParams) -> Self {
        Self {
            items,
            total,
            total_exact: true,
            page: params.page,
            limit: params.limit,
        }
    }

    /// The page `params` asked for, whose total came from a count that read
    /// at most `limit` rows ([`capped_count_limit`]): a count that reached it
    /// stopped, so the total is a lower bound (`limit - 1`, not exact).
    pub fn capped(items: Vec<T>, counted: i64, limit: i64, params: PageParams) -> Self {
        let mut page = Self::exact(items, counted, params);
        if counted >= limit {
            page.total = limit - 1;
            page.total_exact = false;
        }
        page
    }

    /// The page `params` asked for: with the capped count of its matches
    /// when it was taken ([`Page::capped`]), or, without one, holding them
    /// all ([`whole_total`]).
    pub fn from_count(items: Vec<T>, counted: Option<i64>, limit: i64, params: PageParams) -> Self {
        match counted {
            Some(counted) => Self::capped(items, counted, limit, params),
            None => {
                let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
                Self::exact(items, total, params)
            }
        }
    }

    /// No items: the answer to a filter no row can match.
    pub fn empty(params: PageParams) -> Self {
        Self::exact(Vec::new(), 0, params)
    }
}

/// A value bound to a condition of a [`Where`].
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    Int(i64),
}

impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(v.to_string())
    }
}
impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Text(v)
    }
}
impl From<&String> for Param {
    fn from(v: &String) -> Self {
        Param::Text(v.clone())
    }
}
impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(v)
    }
}
impl From<chrono::NaiveDate> for Param {
    fn from(v: chrono::NaiveDate) -> Self {
        Param::Text(v.to_string())
    }
}

/// The conditions of a list query that were asked for, with their values in
/// placeholder order.
#[derive(Debug, Clone, Default)]
pub struct Where {
    conditions: Vec<String>,
    params: Vec<Param>,
}

impl Where {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `condition`, whose `?` placeholders take `params` in order.
    pub fn and(mut self, condition: impl Into<String>, params: impl IntoIterator<Item = Param>) -> Self {
        self.conditions.push(condition.into());
        self.params.extend(params);
        self
    }

    /// Adds `condition` (one `?`) only when `value` is given.
    pub fn and_eq<T: Into<Param>>(self, condition: &str, value: Option<T>) -> Self {
        match value {
            Some(v) => self.and(condition, [v.into()]),
            None => self,
        }
    }

    /// `WHERE a AND b …`, or nothing when no condition was asked for.
    pub fn sql(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.conditions.join(" AND "))
        }
    }

    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Binds the values on a query whose SQL holds [`Where::sql`].
    pub fn bind<'q>(&self, mut q: Query<'q, Any, AnyArguments<'q>>) -> Query<'q, Any, AnyArguments<'q>> {
        for p in &self.params {
            q = match p {
                Param::Text(v) => q.bind(v.clone()),
                Param::Int(v) => q.bind(*v),
            };
        }
        q
    }

    fn bind_scalar<'q>(
        &self,
        mut q: QueryScalar<'q, Any, i64, AnyArguments<'q>>,
    ) -> QueryScalar<'q, Any, i64, AnyArguments<'q>> {
        for p in &self.params {
            q = match p {
                Param::Text(v) => q.bind(v.clone()),
                Param::Int(v) => q.bind(*v),
            };
        }
        q
    }
}

/// A list query: which rows (`from`, the table and its alias, for counting),
/// how a row is selected (`select`, the `SELECT … FROM …` with its joins,
/// which must keep every row of `from`), and their order.
pub struct ListQuery<'a> {
    pub select: &'a str,
    pub from: &'a str,
    pub order_by: &'a str,
}

impl ReadStore {
    /// Every row of `select` matching `filter`, then `tail` (`ORDER BY …`, `LIMIT n`).
    pub async fn rows<T>(
        &self,
        select: &str,
        filter: &Where,
        tail: &str,
        row: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, sqlx::Error> {
        self.rows_on(&mut *self.pool().acquire().await?, select, filter, tail, row)
            .await
    }

    /// As [`ReadStore::rows`], on a connection the caller holds for the
    /// other statements of the same read.
    pub async fn rows_on<T>(
        &self,
        conn: &mut AnyConnection,
        select: &str,
        filter: &Where,
        tail: &str,
        row: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, sqlx::Error> {
        let sql = format!("{select} {} {tail}", filter.sql());
        let rows = filter.bind(sqlx::query(&sql)).fetch_all(conn).await?;
        rows.iter().map(row).collect()
    }

    /// One page of `list` filtered by `filter`, and the number of rows it
    /// matches: on one connection (one hand-out and one return to the pool,
    /// which pings it), the filter built and bound once. A first page that
    /// holds fewer rows than its limit holds every match, so its total is
    /// its length and nothing is counted (most patients' records, visits and
    /// orders fit one page).
    pub async fn page<T>(
        &self,
        list: &ListQuery<'_>,
        filter: &Where,
        page: PageParams,
        row: impl Fn(&AnyRow) -> Result<T, sqlx::Error>,
    ) -> Result<Page<T>, sqlx::Error> {
        let where_sql = filter.sql();
        let mut conn = self.pool().acquire().await?;
        let page_sql = format!(
            "{} {where_sql} ORDER BY {} LIMIT ? OFFSET ?",
            list.select, list.order_by
        );
        let rows = filter
            .bind(sqlx::query(&page_sql))
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(&mut *conn)
            .await?;
        let total = match whole_total(page, rows.len()) {
            Some(total) => total,
            None => {
                let count_sql = format!("SELECT COUNT(*) FROM {} {where_sql}", list.from);
                filter
                    .bind_scalar(sqlx::query_scalar(&count_sql))
                    .fetch_one(&mut *conn)
                    .await?
            }
        };
        drop(conn);
        let items = rows.iter().map(row).collect::<Result<_, _>>()?;
        Ok(Page::exact(items, total, page))
    }
}

/// The total of a list whose page `page` came back with `rows` rows, when the
/// page itself tells it: a first page short of its limit holds every match.
/// `None`: count.
pub fn whole_total(page: PageParams, rows: usize) -> Option<i64> {
    let rows = i64::try_from(rows).ok()?;
    (page.offset() == 0 && rows < page.limit()).then_some(rows)
}

/// Matching rows an audit list (`/audit/events`, `/audit/access`,
/// `/audit/logins`) counts: past this its total is a lower bound
/// (`total_exact: false`, "10,000+"). The access log grows with every read of
/// patient data (tens of millions of rows in a year of a large deployment),
/// and counting an unfiltered view of it read the whole table on every page.
pub const AUDIT_TOTAL_CAP: i64 = 10_000;

/// The rows a count capped at `cap` reads for `page`: up to the cap, or to
/// the end of the page asked for when that lies past it (a page past the cap
/// still learns that it is not the last), plus one to tell whether more
/// follow. See [`Page::capped`].
pub fn capped_count_limit(cap: i64, page: PageParams) -> i64 {
    cap.max(page.offset() + page.limit()) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capped_count_is_exact_below_its_limit_and_a_lower_bound_at_it() {
        let first = PageParams::parse(Some(1), Some(20)).unwrap();
        assert_eq!(capped_count_limit(100, first), 101);
        // A page past the cap counts to its own end.
        let far = PageParams::parse(Some(10), Some(20)).unwrap();
        assert_eq!(capped_count_limit(100, far), 201);
        let below = Page::capped(vec![1], 100, 101, first);
        assert_eq!((below.total, below.total_exact), (100, true));
        let at = Page::capped(vec![1], 101, 101, first);
        assert_eq!((at.total, at.total_exact), (100, false));
    }

    #[test]
    fn a_short_first_page_is_its_own_total() {
        let first = PageParams::parse(Some(1), Some(20)).unwrap();
        assert_eq!(whole_total(first, 0), Some(0));
        assert_eq!(whole_total(first, 19), Some(19));
        // A full page may have more behind it; a later page's rows say nothing of those before.
        assert_eq!(whole_total(first, 20), None);
        let second = PageParams::parse(Some(2), Some(20)).unwrap();
        assert_eq!(whole_total(second, 3), None);
        assert_eq!(whole_total(second, 0), None);
    }

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(
            PageParams::parse(None, None).unwrap(),
            PageParams { page: 1, limit: 20 }
        );
        assert_eq!(PageParams::parse(Some(3), Some(10)).unwrap().offset(), 20);
        assert_eq!(PageParams::parse(Some(0), None).unwrap_err().0, "page");
        assert_eq!(PageParams::parse(None, Some(101)).unwrap_err().0, "limit");
    }

    #[test]
    fn a_filter_holds_only_the_conditions_asked_for() {
        let none = Where::new().and_eq::<&str>("a.status = ?", None);
        assert_eq!(none.sql(), "");
        assert!(none.params().is_empty());
        let some = Where::new()
            .and_eq("a.status = ?", Some("open"))
            .and_eq::<i64>("a.n = ?", None)
            .and(
                "a.d BETWEEN ? AND ?",
                [Param::from("2026-01-01"), Param::from("2026-12-31")],
            );
        assert_eq!(some.sql(), "WHERE a.status = ? AND a.d BETWEEN ? AND ?");
        assert_eq!(
            some.params(),
            &[
                Param::from("open"),
                Param::from("2026-01-01"),
                Param::from("2026-12-31")
            ]
        );
    }
}
