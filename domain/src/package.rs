//! Service packages: what a family buys (price, how long, how many visits a month).

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::validation::Invalid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageDetails {
    pub name: String,
    pub description: Option<String>,
    /// Money is a decimal in yuan, never a float.
    pub price: Decimal,
    pub duration_days: u32,
    /// Regular visits included per calendar month.
    pub service_frequency: u32,
    pub service_items: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PackageCommand {
    Create(PackageDetails),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum PackageEvent {
    PackageCreated(PackageDetails),
}

impl DomainEvent for PackageEvent {
    fn event_type(&self) -> String {
        "PackageCreated".into()
    }
    fn event_version(&self) -> String {
        "1.0".into()
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ServicePackage {
    pub details: Option<PackageDetails>,
}

/// Every way a package refuses a command. The server's error module gives
/// each its HTTP status and its message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PackageError {
    /// A negative price, or no days or no visits (400, naming the field).
    #[error(transparent)]
    Validation(#[from] Invalid),
    /// A second creation under the same id (409).
    #[error("the package already exists")]
    AlreadyExists,
}

impl Aggregate for ServicePackage {
    const TYPE: &'static str = "service_package";
    type Command = PackageCommand;
    type Event = PackageEvent;
    type Error = PackageError;
    type Services = ();

    async fn handle(&mut self, command: PackageCommand, _: &(), sink: &EventSink<Self>) -> Result<(), PackageError> {
        match command {
            PackageCommand::Create(_) if self.details.is_some() => Err(PackageError::AlreadyExists),
            PackageCommand::Create(d) => {
                if d.price < Decimal::ZERO {
                    return Err(Invalid::field("price", "不能为负数").into());
                }
                if d.duration_days == 0 {
                    return Err(Invalid::field("duration_days", "必须大于0").into());
                }
                if d.service_frequency == 0 {
                    return Err(Invalid::field("service_frequency", "必须大于0").into());
                }
                sink.write(PackageEvent::PackageCreated(d), self).await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: PackageEvent) {
        match event {
            PackageEvent::PackageCreated(d) => self.details = Some(d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type T = TestFramework<ServicePackage>;

    fn details() -> PackageDetails {
        PackageDetails {
            name: "基础".into(),
            description: None,
            price: Decimal::new(99900, 2),
            duration_days: 30,
            service_frequency: 4,
            service_items: vec!["血压测量".into()],
        }
    }
    fn refused_field(d: PackageDetails) -> Option<String> {
        match T::with(())
            .given_no_previous_events()
            .when(PackageCommand::Create(d))
            .inspect_result()
        {
            Err(PackageError::Validation(Invalid(fields))) => fields.into_keys().next(),
            _ => None,
        }
    }

    #[test]
    fn it_should_create_a_package() {
        T::with(())
            .given_no_previous_events()
            .when(PackageCommand::Create(details()))
            .then_expect_events(vec![PackageEvent::PackageCreated(details())]);
    }

    #[test]
    fn it_should_create_a_free_package() {
        let free = PackageDetails {
            price: Decimal::ZERO,
            ..details()
        };
        T::with(())
            .given_no_previous_events()
            .when(PackageCommand::Create(free.clone()))
            .then_expect_events(vec![PackageEvent::PackageCreated(free)]);
    }

    #[test]
    fn it_should_not_create_a_package_twice() {
        T::with(())
            .given(vec![PackageEvent::PackageCreated(details())])
            .when(PackageCommand::Create(details()))
            .then_expect_error(PackageError::AlreadyExists);
    }

    #[test]
    fn it_should_not_create_a_package_with_a_negative_price() {
        let d = PackageDetails {
            price: Decimal::new(-1, 2),
            ..details()
        };
        assert_eq!(refused_field(d).as_deref(), Some("price"));
    }

    #[test]
    fn it_should_not_create_a_package_that_lasts_no_days() {
        let d = PackageDetails {
            duration_days: 0,
            ..details()
        };
        assert_eq!(refused_field(d).as_deref(), Some("duration_days"));
    }

    #[test]
    fn it_should_not_create_a_package_without_visits() {
        let d = PackageDetails {
            service_frequency: 0,
            ..details()
        };
        assert_eq!(refused_field(d).as_deref(), Some("service_frequency"));
    }
}
