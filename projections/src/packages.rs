//! Service packages on sale.

use async_trait::async_trait;
use domain::ids::PackageId;
use domain::package::PackageEvent;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use utoipa::ToSchema;

use crate::page::{ListQuery, Page, PageParams, Where};
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
    #[schema(value_type = String, format = Uuid)]
    pub id: PackageId,
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
        id: r.id("id")?,
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
    /// The service packages read model.
    pub fn packages(&self) -> Packages<'_> {
        Packages(self)
    }
}

/// Queries of the service packages read model.
#[derive(Clone, Copy)]
pub struct Packages<'a>(&'a ReadStore);

impl Packages<'_> {
    pub async fn list(self, page: PageParams) -> Result<Page<PackageView>, sqlx::Error> {
        let list = ListQuery {
            select: "SELECT * FROM service_packages",
            from: "service_packages",
            order_by: "created_at DESC, id",
        };
        self.0.page(&list, &Where::new(), page, package_view).await
    }

    pub async fn get(self, id: PackageId) -> Result<Option<PackageView>, sqlx::Error> {
        let row = sqlx::query("SELECT * FROM service_packages WHERE id = ?")
            .bind(id.to_string())
            .fetch_optional(self.0.pool())
            .await?;
        row.as_ref().map(package_view).transpose()
    }
}
