//! Service packages: what a family buys (price, how long, how many visits a month).

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::DomainError;

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

impl Aggregate for ServicePackage {
    const TYPE: &'static str = "service_package";
    type Command = PackageCommand;
    type Event = PackageEvent;
    type Error = DomainError;
    type Services = ();

    async fn handle(&mut self, command: PackageCommand, _: &(), sink: &EventSink<Self>) -> Result<(), DomainError> {
        match command {
            PackageCommand::Create(_) if self.details.is_some() => Err(DomainError::conflict("套餐已存在")),
            PackageCommand::Create(d) => {
                if d.price < Decimal::ZERO {
                    return Err(DomainError::field("price", "不能为负数"));
                }
                if d.duration_days == 0 {
                    return Err(DomainError::field("duration_days", "必须大于0"));
                }
                if d.service_frequency == 0 {
                    return Err(DomainError::field("service_frequency", "必须大于0"));
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

    #[test]
    fn it_should_not_create_a_package_without_visits() {
        let d = PackageDetails {
            name: "基础".into(),
            description: None,
            price: Decimal::new(99900, 2),
            duration_days: 30,
            service_frequency: 0,
            service_items: vec![],
        };
        TestFramework::<ServicePackage>::with(())
            .given_no_previous_events()
            .when(PackageCommand::Create(d))
            .then_expect_error(DomainError::field("service_frequency", "必须大于0"));
    }
}
