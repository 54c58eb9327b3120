//! Typed identifiers. Every aggregate id is a UUID wrapped in its own type so
//! that a `PatientId` can never be passed where a `FamilyId` is expected.
//! New ids are time-ordered UUIDv7 (ids minted before 2026-12 are random v4:
//! both parse and sort alike as strings).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh id: a UUIDv7, its first 48 bits the creation time in
            /// milliseconds, the rest random (74 bits). Ids made later sort
            /// later (monotonic within a process), so a new row lands at the
            /// end of every index keyed by its id instead of on a random page:
            /// inserts at scale, and a rebuild, touch a few hot pages, not the
            /// whole index. (The creation time it shows is also in every view.)
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
            /// The id as stored in the event store (`aggregate_id`).
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self(Uuid::nil())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// A user of any role; recorders and our own doctors are identified by their user id.
    UserId
);
id_type!(
    /// A household visited under a service package.
    FamilyId
);
id_type!(
    /// A person cared for; belongs to one family.
    PatientId
);
id_type!(
    /// A service package offered for sale.
    PackageId
);
id_type!(
    /// A patient's subscription to a package, assigned to one recorder.
    SubscriptionId
);
id_type!(
    /// One login session: access and refresh tokens carry it so logout revokes both.
    SessionId
);
id_type!(
    /// A home visit (an "appointment" in the API).
    VisitId
);
id_type!(
    /// One visit's record of vitals, symptoms, notes, position and files.
    HealthRecordId
);
id_type!(
    /// An uploaded file (photo, audio, signature, document).
    FileId
);
id_type!(
    /// A request, by a recorder or by an alert, for a doctor's order.
    OrderRequestId
);
id_type!(
    /// A doctor's medical order.
    MedicalOrderId
);
id_type!(
    /// A partner hospital.
    HospitalId
);
id_type!(
    /// A department of a partner hospital.
    DepartmentId
);
id_type!(
    /// A doctor of a partner hospital (not one of our own doctors).
    HospitalDoctorId
);
id_type!(
    /// A bookable slot: department, optional doctor, date, time, capacity.
    SlotId
);
id_type!(
    /// A patient's booking at a partner hospital.
    HospitalBookingId
);
id_type!(
    /// A visit verification exception: one per visit and code, so its id is
    /// derived from both ([`EvvExceptionId::of`]).
    EvvExceptionId
);

impl EvvExceptionId {
    /// The one exception of `visit` with `code`: the same inputs always give
    /// the same id, so a second raise lands on the same aggregate.
    pub fn of(visit: VisitId, code: &str) -> Self {
        /// Namespace of these ids (a fixed random UUID).
        const NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a4e_93d7_4b8e_a5c1_0e2f_7d94_b3a6);
        Self(Uuid::new_v5(&NAMESPACE, format!("{visit}:{code}").as_bytes()))
    }
}

id_type!(
    /// An alert raised by an abnormal health record (one per record).
    AlertId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_v7_and_sort_in_the_order_they_were_made_as_uuids_and_as_text() {
        let ids: Vec<FamilyId> = (0..10_000).map(|_| FamilyId::new()).collect();
        assert!(ids.iter().all(|id| id.as_uuid().get_version_num() == 7));
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        let text: Vec<String> = ids.iter().map(ToString::to_string).collect();
        assert!(text.windows(2).all(|w| w[0] < w[1]));
    }
}
