//! Paging for list endpoints: `page` from 1, `limit` 1..=100 (default 20).

use serde::Serialize;

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
    pub page: u32,
    pub limit: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
