//! Service packages.

use actix_web::web;
use domain::user::Role;
use projections::packages::PackageView;

use crate::api::error::{created, ok, ApiResult};
use crate::api::{Body, IdVersion, PageQuery};
use crate::app::packages;
pub use crate::app::packages::PackageInput;
use crate::auth::Principal;
use crate::state::{AppState, RequestMeta};

pub fn routes(cfg: &mut crate::api::Routes) {
    cfg.post("/service-packages", create_package)
        .get("/service-packages", list_packages);
}

#[utoipa::path(post, path = "/api/v1/service-packages", tag = "packages", request_body = PackageInput, security(("bearer" = [])),
    responses((status = 201, description = "the new package's id", body = crate::api::Envelope<IdVersion>)))]
pub async fn create_package(
    state: web::Data<AppState>,
    p: Principal,
    meta: RequestMeta,
    body: Body<PackageInput>,
) -> ApiResult {
    Ok(created(packages::create(&state, &p, &meta, &body.0).await?))
}

crate::api::list_page!(
    /// `{packages:[...], total, page, limit}`
    PackageList { packages: PackageView }
);

#[utoipa::path(get, path = "/api/v1/service-packages", tag = "packages", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = crate::api::Envelope<PackageList>)))]
pub async fn list_packages(state: web::Data<AppState>, p: Principal, q: web::Query<PageQuery>) -> ApiResult {
    p.require(&[Role::Admin, Role::Recorder, Role::Doctor])?;
    let packages = state.read().await.packages().list(q.params()?).await?;
    Ok(ok(PackageList::from(packages)))
}
