//! Service packages on sale.

use async_trait::async_trait;
use domain::package::PackageEvent;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::page::{Page, PageParams};
use crate::projector::{ProjectionError, Projector, StoredEvent};
use crate::store::{ReadStore, RowExt};

pub struct PackagesProjector;

#[async_trait]
impl Projector for PackagesProjector {
    fn name(&self) -> &'static str {
        "service_packages"
    }
    fn tables(&self) -> &'static [&'static str] {
        &["service_packages"]
    }

    async fn apply(&self, c: &mut AnyConnection, e: &StoredEvent) -> Result<(), ProjectionError> {
        if e.aggregate_type != "service_package" {
            return Ok(());
        }
        match e.decode::<PackageEvent>()? {
            PackageEvent::PackageCreated(d) => {
                sqlx::query(
                    "INSERT INTO service_packages (id, name, description, price, duration_days, service_frequency,
                        service_items, created_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(&e.aggregate_id)
                .bind(&d.name)
                .bind(&d.description)
                .bind(d.price.to_string())
                .bind(i64::from(d.duration_days))
                .bind(i64::from(d.service_frequency))
                .bind(serde_json::to_string(&d.service_items).unwrap_or_else(|_| "[]".into()))
                .bind(e.at())
                .bind(e.sequence)
                .execute(&mut *c)
                .await?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PackageView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Decimal string in yuan, e.g. "1999.00".
    pub price: String,
    pub duration_days: i64,
    pub service_frequency: i64,
    #[schema(value_type = Vec<String>)]
    pub service_items: serde_json::Value,
    pub created_at: String,
    pub version: i64,
}

fn package_view(r: &AnyRow) -> Result<PackageView, sqlx::Error> {
    Ok(PackageView {
        id: r.text("id")?,
        name: r.text("name")?,
        description: r.opt_text("description")?,
        price: r.text("price")?,
        duration_days: r.int("duration_days")?,
        service_frequency: r.int("service_frequency")?,
        service_items: r.json("service_items")?,
        created_at: r.text("created_at")?,
        version: r.int("version")?,
    })
}

impl ReadStore {
    pub async fn packages(&self, page: PageParams) -> Result<Page<PackageView>, sqlx::Error> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM service_packages")
            .fetch_one(self.pool())
            .await?;
        let rows = sqlx::query("SELECT * FROM service_packages ORDER BY created_at DESC, id LIMIT ? OFFSET ?")
            .bind(page.limit())
            .bind(page.offset())
            .fetch_all(self.pool())
            .await?;
        let items = rows.iter().map(package_view).collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            total,
            page: page.page,
            limit: page.limit,
        })
    }

    pub async fn package(&self, id: &str) -> Result<Option<PackageView>, sqlx::Error> {
        let row = sqlx::query("SELECT * FROM service_packages WHERE id = ?")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(package_view).transpose()
    }
}
