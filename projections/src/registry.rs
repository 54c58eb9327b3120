//! The registry of read models: which projectors the pipeline runs and a
//! rebuild replays. It sits above the projector modules (each of which only
//! knows the [`Projector`] trait), so adding a read model is one line here.

use std::sync::Arc;

use crate::projector::Projector;

/// Every projector, in the order rebuilds run them.
pub fn all_projectors() -> Vec<Arc<dyn Projector>> {
    vec![
        Arc::new(crate::users::UsersProjector),
        Arc::new(crate::families::FamiliesProjector),
        Arc::new(crate::packages::PackagesProjector),
        Arc::new(crate::subscriptions::SubscriptionsProjector),
        Arc::new(crate::visits::VisitsProjector),
        Arc::new(crate::records::RecordsProjector),
        Arc::new(crate::orders::OrdersProjector),
        Arc::new(crate::alerts::AlertsProjector),
        Arc::new(crate::orders::NotificationsProjector),
        Arc::new(crate::hospitals::HospitalsProjector),
        Arc::new(crate::evv::EvvExceptionsProjector),
        Arc::new(crate::wechat::WechatProjector),
        Arc::new(crate::jobs::JobRunsProjector),
    ]
}
