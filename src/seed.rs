//! `carelog bench seed --patients N`: a realistic history for benchmarks at
//! scale, written through the real event store fast enough to reach a million
//! patients in minutes.
//!
//! What is written is what the API would write: recorders and a package are
//! created by the ordinary commands (password hashing, uniqueness claims);
//! each household's events — `FamilyCreated`, `PatientRegistered`,
//! `SubscriptionCreated`, a visit in the coming week for one patient in three
//! (about ten a day per recorder, as a recorder's day holds)
//! and a health record for one in four — are decided by the aggregates
//! themselves (`Aggregate::handle` on a new aggregate, so every domain rule
//! applies), sealed by the privacy layer (one key per household and patient,
//! created a few hundred per statement) and appended by the group-commit
//! appender in large all-or-nothing jobs. Only the per-command HTTP, load and
//! read-your-writes wait are skipped. Read models follow as usual: start the
//! server, or run `carelog rebuild` (which then measures a replay at scale).

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{NaiveDate, NaiveTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use domain::compliance::RecorderStanding;
use domain::family::{Family, FamilyCommand, FamilyDetails};
use domain::health_record::{HealthRecord, HealthRecordCommand, NewRecord, RecordFacts, RecordFiles};
use domain::ids::{FamilyId, HealthRecordId, PackageId, PatientId, SubscriptionId, UserId, VisitId};
use domain::package::{PackageCommand, PackageDetails, ServicePackage};
use domain::patient::{Patient, PatientCommand, PatientDetails};
use domain::subscription::{Subscription, SubscriptionCommand};
use domain::user::{NewUser, RecorderProfile, Role};
use domain::values::{Gender, PhoneNumber};
use domain::visit::{ScheduleContext, Visit, VisitCommand, VisitPlan, VisitType};
use domain::vitals::VitalSigns;
use futures::{stream, StreamExt, TryStreamExt};

use crate::appender::Row;
use crate::state::{AppState, RequestMeta};

/// Patients per sealed-and-appended chunk.
const CHUNK: u64 = 2_000;
/// Rows per append job (each job is one all-or-nothing write).
const ROWS_PER_JOB: usize = 1_000;
/// Jobs in flight, so the appender can group them.
const JOBS_IN_FLIGHT: usize = 4;
/// Password of every seeded recorder.
pub const SEED_PASSWORD: &str = "seed-pass-1";

#[derive(Debug, Clone, Copy)]
pub struct SeedOptions {
    pub patients: u64,
    /// Recorders to spread the patients over (default: one per 200 patients).
    pub recorders: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Seeded {
    pub patients: u64,
    pub families: u64,
    pub recorders: u64,
    pub events: u64,
    pub elapsed: Duration,
    /// Usernames of the seeded recorders (password [`SEED_PASSWORD`]).
    pub first_recorder: String,
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡",
];
const GIVEN: &[&str] = &[
    "建国", "秀英", "桂兰", "玉兰", "志强", "淑珍", "德明", "凤英", "国华", "美兰", "金花", "海峰",
];
const DISTRICTS: &[&str] = &[
    "徐汇区",
    "静安区",
    "浦东新区",
    "黄浦区",
    "长宁区",
    "普陀区",
    "虹口区",
    "杨浦区",
];

/// The events a command decides on a new aggregate.
async fn decide<A>(command: A::Command) -> anyhow::Result<Vec<A::Event>>
where
    A: Aggregate<Services = ()>,
    A::Error: std::fmt::Display,
{
    let mut aggregate = A::default();
    let sink = EventSink::default();
    aggregate
        .handle(command, &(), &sink)
        .await
        .map_err(|e| anyhow::anyhow!("{} refused a seeded command: {e}", A::TYPE))?;
    Ok(sink.collect().await)
}

/// One aggregate's new events, ready to seal.
struct Pending {
    aggregate_type: &'static str,
    aggregate_id: String,
    events: Vec<(String, String, serde_json::Value)>,
}

fn pending<A: Aggregate>(id: String, events: Vec<A::Event>) -> anyhow::Result<Pending> {
    let events = events
        .into_iter()
        .map(|e| Ok((e.event_type(), e.event_version(), serde_json::to_value(&e)?)))
        .collect::<anyhow::Result<_>>()?;
    Ok(Pending {
        aggregate_type: A::TYPE,
        aggregate_id: id,
        events,
    })
}

pub async fn seed(state: &AppState, options: SeedOptions) -> anyhow::Result<Seeded> {
    let started = Instant::now();
    let recorders_wanted = options.recorders.unwrap_or(options.patients / 200).max(1);
    let run: u32 = rand::random::<u32>() % 100_000;
    let today = state.today();

    let package = PackageId::new();
    let details = PackageDetails {
        name: format!("压测套餐{run}"),
        description: Some("基础护理、生命体征监测".into()),
        price: rust_decimal::Decimal::new(19_900, 2),
        duration_days: 365,
        service_frequency: 8,
        service_items: vec!["血压".into(), "血糖".into(), "用药指导".into()],
    };
    state
        .execute::<ServicePackage>(
            &package.to_string(),
            PackageCommand::Create(details),
            RequestMeta::system("BenchSeed"),
        )
        .await
        .map_err(|e| anyhow::anyhow!("cannot create the package: {e}"))?;

    // Recorders through the ordinary path (hashing on its threads, claims).
    let recorders: Vec<UserId> = stream::iter(0..recorders_wanted)
        .map(|r| async move {
            let user = NewUser {
                username: format!("seed{run}-r{r}"),
                phone: PhoneNumber::parse(&format!("13{:09}", u64::from(run) * 10_000 + r))
                    .map_err(|e| anyhow::anyhow!("seeded phone: {e}"))?,
                password_hash: String::new(),
                role: Role::Recorder,
                name: format!("{}记录员{r}", SURNAMES[r as usize % SURNAMES.len()]),
                avatar: None,
                recorder: Some(RecorderProfile {
                    employee_id: format!("S{run}-{r}"),
                    qualification_cert: None,
                    health_cert: None,
                    cert_expiry_date: None,
                    work_area: Some(DISTRICTS[r as usize % DISTRICTS.len()].into()),
                }),
                doctor: None,
            };
            crate::app::users::create(state, user, SEED_PASSWORD, RequestMeta::system("BenchSeed"))
                .await
                .map_err(|e| anyhow::anyhow!("cannot create a recorder: {e}"))
        })
        .buffered(4)
        .try_collect()
        .await?;

    let metadata = serde_json::to_string(&RequestMeta::system("BenchSeed").metadata)?;
    let mut events = 0u64;
    let mut families = 0u64;
    let mut next = 0u64;
    while next < options.patients {
        let end = (next + CHUNK).min(options.patients);
        let mut chunk: Vec<Pending> = Vec::with_capacity(((end - next) * 3) as usize);
        let mut family = FamilyId::new();
        for i in next..end {
            // Two patients per household.
            if i.is_multiple_of(2) {
                family = FamilyId::new();
                families += 1;
                let surname = SURNAMES[(i / 2) as usize % SURNAMES.len()];
                let details = FamilyDetails {
                    family_name: format!("{surname}家{}", i / 2),
                    primary_address: format!("上海市{}幸福路{}号", DISTRICTS[i as usize % DISTRICTS.len()], i / 2),
                    secondary_address: None,
                    contact_phone: PhoneNumber::parse(&format!("139{:08}", (i / 2) % 100_000_000))
                        .map_err(|e| anyhow::anyhow!("seeded phone: {e}"))?,
                    emergency_contact: None,
                    emergency_phone: None,
                    home_lat: Some(31.2 + (i % 1000) as f64 / 10_000.0),
                    home_lng: Some(121.4 + (i % 997) as f64 / 10_000.0),
                };
                let id = family.to_string();
                chunk.push(pending::<Family>(
                    id,
                    decide::<Family>(FamilyCommand::Create(details)).await?,
                )?);
            }
            let patient = PatientId::new();
            let details = PatientDetails {
                name: format!(
                    "{}{}",
                    SURNAMES[(i / 2) as usize % SURNAMES.len()],
                    GIVEN[i as usize % GIVEN.len()]
                ),
                gender: if i.is_multiple_of(2) {
                    Gender::Male
                } else {
                    Gender::Female
                },
                birth_date: NaiveDate::from_ymd_opt(1930 + (i % 30) as i32, 1 + (i % 12) as u32, 1 + (i % 28) as u32)
                    .context("seeded birth date")?,
                relationship_to_head: if i.is_multiple_of(2) { "本人" } else { "配偶" }.into(),
                medical_history: vec!["高血压".into()],
                current_medications: vec!["氨氯地平".into()],
                id_card: None,
                phone: None,
                allergies: None,
                service_preferences: None,
            };
            let register = PatientCommand::Register {
                family_id: family,
                details,
            };
            chunk.push(pending::<Patient>(
                patient.to_string(),
                decide::<Patient>(register).await?,
            )?);
            let recorder = recorders[(i % recorders.len() as u64) as usize];
            let subscription = SubscriptionId::new();
            let subscribe = SubscriptionCommand::Create {
                patient_id: patient,
                package_id: package,
                recorder_id: recorder,
                start_date: today - chrono::Days::new(i % 90),
                duration_days: 365,
                // Seeded recorders are on duty with no certificate date.
                recorder: RecorderStanding::good(today),
            };
            chunk.push(pending::<Subscription>(
                subscription.to_string(),
                decide::<Subscription>(subscribe).await?,
            )?);
            if i.is_multiple_of(3) {
                let plan = VisitPlan {
                    patient_id: patient,
                    recorder_id: recorder,
                    subscription_id: subscription,
                    scheduled_date: today + chrono::Days::new(i / 3 % 7),
                    scheduled_time: NaiveTime::from_hms_opt(8 + (i % 10) as u32, 0, 0).context("seeded time")?,
                    appointment_type: VisitType::Regular,
                    notes: None,
                };
                let context = ScheduleContext {
                    now: today.and_hms_opt(0, 0, 0).context("midnight")?,
                    monthly_quota: 8,
                    regular_visits_that_month: 0,
                };
                chunk.push(pending::<Visit>(
                    VisitId::new().to_string(),
                    decide::<Visit>(VisitCommand::Schedule {
                        plan,
                        context,
                        recorder: RecorderStanding::good(today),
                    })
                    .await?,
                )?);
            }
            if i.is_multiple_of(4) {
                let record = NewRecord {
                    patient_id: patient,
                    recorder_id: recorder,
                    appointment_id: None,
                    visit_date: today - chrono::Days::new(1 + i % 30),
                    visit_time: NaiveTime::from_hms_opt(9, 30, 0).context("seeded time")?,
                    location: None,
                    vital_signs: VitalSigns {
                        heart_rate: Some(60 + (i % 30) as u16),
                        temperature: Some(36.5),
                        blood_oxygen: Some(97.0),
                        ..Default::default()
                    },
                    symptoms: None,
                    notes: Some("精神可，按时服药".into()),
                    files: RecordFiles::default(),
                };
                // No location, so no distance: the home is not needed.
                let facts = RecordFacts {
                    home: None,
                    thresholds: state.settings.alerts.thresholds.clone(),
                    recorded_at: Utc::now(),
                    away_radius_m: state.settings.evv.radius_m,
                };
                chunk.push(pending::<HealthRecord>(
                    HealthRecordId::new().to_string(),
                    decide::<HealthRecord>(HealthRecordCommand::Create { record, facts }).await?,
                )?);
            }
        }
        events += append_chunk(state, chunk, &metadata).await?;
        next = end;
        if next.is_multiple_of(100_000) || next == options.patients {
            let secs = started.elapsed().as_secs_f64();
            tracing::info!(patients = next, events, seconds = secs, "seeding");
            eprintln!(
                "seeded {next} patients, {events} events ({:.0} events/s)",
                events as f64 / secs.max(1e-9)
            );
        }
    }
    // A bulk load: statistics for the planner over what it wrote.
    state.store.analyze().await?;
    Ok(Seeded {
        patients: options.patients,
        families,
        recorders: recorders.len() as u64,
        events,
        elapsed: started.elapsed(),
        first_recorder: format!("seed{run}-r0"),
    })
}

/// Seals a chunk's events (keys in bulk) and appends them in jobs; each
/// aggregate's events stay in one job.
async fn append_chunk(state: &AppState, chunk: Vec<Pending>, metadata: &str) -> anyhow::Result<u64> {
    let mut flat: Vec<(&str, String, serde_json::Value)> = Vec::new();
    for p in &chunk {
        for (_, _, payload) in &p.events {
            flat.push((p.aggregate_type, p.aggregate_id.clone(), payload.clone()));
        }
    }
    state
        .store
        .privacy()
        .seal_many(&mut flat)
        .await
        .map_err(|e| anyhow::anyhow!("sealing: {e}"))?;
    let mut sealed = flat.into_iter();
    let mut jobs: Vec<Vec<Row>> = vec![Vec::new()];
    for p in chunk {
        if jobs.last().is_some_and(|j| j.len() + p.events.len() > ROWS_PER_JOB) {
            jobs.push(Vec::new());
        }
        let job = jobs.last_mut().expect("jobs starts with one and only grows");
        for (sequence, (event_type, event_version, _)) in p.events.into_iter().enumerate() {
            let (_, _, payload) = sealed.next().context("one sealed payload per event")?;
            job.push(Row {
                aggregate_type: p.aggregate_type.to_string(),
                aggregate_id: p.aggregate_id.clone(),
                sequence: sequence as i64 + 1,
                event_type,
                event_version,
                payload: serde_json::to_string(&payload)?,
                metadata: metadata.to_string(),
            });
        }
    }
    let rows: u64 = jobs.iter().map(|j| j.len() as u64).sum();
    stream::iter(jobs)
        .map(|job| state.store.append_new(job))
        .buffer_unordered(JOBS_IN_FLIGHT)
        .try_collect::<Vec<_>>()
        .await
        .map_err(|e| anyhow::anyhow!("appending: {e}"))?;
    Ok(rows)
}
