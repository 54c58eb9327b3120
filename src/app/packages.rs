//! Service packages: what a subscription buys (price, duration, regular
//! visits per month).

use domain::ids::PackageId;
use domain::package::{PackageCommand, PackageDetails, ServicePackage};
use domain::user::Role;
use domain::values::{optional_text, text};
use domain::Validator;
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::app::error::AppError;
use crate::app::input::required;
use crate::app::IdVersion;
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};

#[derive(Debug, Deserialize, ToSchema)]
pub struct PackageInput {
    /// 1 to 100 characters.
    #[schema(required = true, value_type = String, min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// Up to 2000 characters.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Yuan, not negative, at most two decimals; a number or a decimal string.
    #[schema(required = true, value_type = crate::app::input::MoneyInput)]
    pub price: Option<Decimal>,
    /// 1 to 3660 days.
    #[schema(required = true, value_type = i64, minimum = 1, maximum = 3660)]
    pub duration_days: Option<i64>,
    /// Regular visits per month, 1 to 100.
    #[schema(required = true, value_type = i64, minimum = 1, maximum = 100)]
    pub service_frequency: Option<i64>,
    pub service_items: Option<Vec<String>>,
}

/// An admin creates a service package.
pub async fn create(
    state: &AppState,
    p: &Principal,
    meta: &RequestMeta,
    input: &PackageInput,
) -> Result<IdVersion, AppError> {
    p.require(&[Role::Admin])?;
    let r = input;
    let mut v = Validator::new();
    let name = required(&mut v, "name", &r.name).and_then(|n| v.check("name", text(n, 100)));
    let description = v
        .check("description", optional_text(r.description.as_deref(), 2000))
        .flatten();
    let price = required(&mut v, "price", &r.price).copied();
    if price.is_some_and(|p| p < Decimal::ZERO || p.scale() > 2) {
        v.add("price", "应为非负金额，最多两位小数");
    }
    let count = |v: &mut Validator, field: &str, x: Option<&i64>, max: i64| {
        x.and_then(|n| {
            v.check(
                field,
                if (1..=max).contains(n) {
                    Ok(*n as u32)
                } else {
                    Err(format!("应在1到{max}之间"))
                },
            )
        })
    };
    let d = required(&mut v, "duration_days", &r.duration_days);
    let duration_days = count(&mut v, "duration_days", d, 3660);
    let f = required(&mut v, "service_frequency", &r.service_frequency);
    let service_frequency = count(&mut v, "service_frequency", f, 100);
    v.finish()?;
    let (Some(name), Some(price), Some(duration_days), Some(service_frequency)) =
        (name, price, duration_days, service_frequency)
    else {
        return Err(AppError::field("body", "缺少必填字段"));
    };
    let details = PackageDetails {
        name,
        description,
        price,
        duration_days,
        service_frequency,
        service_items: r.service_items.clone().unwrap_or_default(),
    };
    let id = PackageId(crate::idempotency::new_id(meta, p)).to_string();
    let ctx = meta.context(Some(p), "CreatePackage").creating();
    crate::app::id_version::<ServicePackage>(state, &id, PackageCommand::Create(details), ctx).await
}
