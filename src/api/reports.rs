//! `GET /reports/weekly?week=YYYY-Www`: what a week held (use case in `app::jobs`).

use actix_web::web;
use projections::jobs::WeeklyReport;
use serde::Deserialize;

use crate::api::error::{ok, ApiResult};
use crate::auth::Principal;
use crate::state::AppState;

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.get("/reports/weekly", weekly);
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WeekQuery {
    /// ISO week `YYYY-Www` (e.g. `2026-W49`), local time; default the current week.
    pub week: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/reports/weekly", tag = "reports", params(WeekQuery), security(("bearer" = [])),
    responses((status = 200, description = "visits scheduled/completed/missed, records, abnormal readings, alerts by status, orders and EVV exceptions of the week: the agency's totals and per recorder (admins), or the recorder's own", body = crate::api::Envelope<WeeklyReport>),
        (status = 400, description = "`week` is not `YYYY-Www`", body = crate::api::ErrorBody),
        (status = 401, body = crate::api::ErrorBody),
        (status = 403, description = "neither an admin nor a recorder", body = crate::api::ErrorBody)))]
pub async fn weekly(state: web::Data<AppState>, p: Principal, q: web::Query<WeekQuery>) -> ApiResult {
    let report = crate::app::jobs::weekly_report(&state, &p, q.week.as_deref()).await?;
    Ok(ok(report))
}
