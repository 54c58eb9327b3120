//! An example analytics consumer of carelog's Kafka events: per day (in
//! Asia/Shanghai) and per recorder, how many home visits were completed and
//! how many vital-sign records were taken.
//!
//! ```sh
//! # with carelog publishing (CARELOG_KAFKA_BROKERS=127.0.0.1:9092):
//! cargo run --example daily_counts
//! # options:
//! KAFKA_BROKERS=kafka:9092 GROUP_ID=my-report EXIT_AFTER_IDLE_SECS=30 cargo run --example daily_counts
//! ```
//!
//! It reads the topics `carelog.appointment` and `carelog.health_record` from
//! the beginning, stops after `EXIT_AFTER_IDLE_SECS` seconds without a new
//! message (default 10; or on Ctrl-C) and prints the table. Offsets are not
//! committed, so every run recounts the whole history.
//!
//! What it shows about consuming carelog's events (see `docs/events.md`):
//! - delivery is at-least-once, so events are deduplicated on the envelope's `id`;
//! - events of one aggregate arrive in order (same key, same partition), so the
//!   recorder named by a visit's `VisitScheduled` is known when its
//!   `VisitCompleted` arrives;
//! - `time` is UTC: days are counted in Asia/Shanghai.
//!
//! Options (environment): `KAFKA_BROKERS` (default `127.0.0.1:9092`),
//! `GROUP_ID` (default `carelog-daily-counts`), `EXIT_AFTER_IDLE_SECS` (default 10).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, NaiveDate};
use chrono_tz::Asia::Shanghai;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use serde_json::Value;
use tokio::time::Instant;

const TOPICS: [&str; 2] = ["carelog.appointment", "carelog.health_record"];
const VISIT_SCHEDULED: &str = "carelog.appointment.VisitScheduled";
const VISIT_COMPLETED: &str = "carelog.appointment.VisitCompleted";
const VITALS_RECORDED: &str = "carelog.health_record.HealthRecordCreated";

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    visits_completed: u64,
    vitals_recorded: u64,
}

#[derive(Debug, Default)]
struct Report {
    /// Event ids already counted: a re-published event is seen again.
    seen: HashSet<String>,
    /// Visit id -> the recorder it was scheduled for.
    visit_recorder: HashMap<String, String>,
    /// (local day, recorder id) -> counts.
    counts: BTreeMap<(NaiveDate, String), Counts>,
    messages: u64,
    duplicates: u64,
    unreadable: u64,
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

impl Report {
    /// Counts one envelope (a CloudEvents JSON object).
    fn add(&mut self, envelope: &Value) -> Result<(), String> {
        let id = text(envelope, "id").ok_or("no id")?;
        if !self.seen.insert(id.to_string()) {
            self.duplicates += 1;
            return Ok(());
        }
        let kind = text(envelope, "type").ok_or("no type")?;
        let subject = text(envelope, "subject").unwrap_or_default();
        let data = envelope.get("data").unwrap_or(&Value::Null);
        let actor = text(envelope, "actorid");
        let day = || -> Result<NaiveDate, String> {
            let time = text(envelope, "time").ok_or("no time")?;
            let t = DateTime::parse_from_rfc3339(time).map_err(|e| format!("time {time:?}: {e}"))?;
            Ok(t.with_timezone(&Shanghai).date_naive())
        };
        match kind {
            VISIT_SCHEDULED => {
                if let Some(recorder) = text(data, "recorder_id") {
                    self.visit_recorder.insert(subject.to_string(), recorder.to_string());
                }
            }
            VISIT_COMPLETED => {
                // The visit's recorder, else whoever completed it.
                let recorder = self
                    .visit_recorder
                    .get(subject)
                    .map(String::as_str)
                    .or(actor)
                    .unwrap_or("(unknown)");
                self.counts
                    .entry((day()?, recorder.to_string()))
                    .or_default()
                    .visits_completed += 1;
            }
            VITALS_RECORDED => {
                let recorder = actor.or_else(|| text(data, "recorder_id")).unwrap_or("(unknown)");
                self.counts
                    .entry((day()?, recorder.to_string()))
                    .or_default()
                    .vitals_recorded += 1;
            }
            _ => {}
        }
        Ok(())
    }

    fn print(&self) {
        println!();
        println!(
            "{:<12} {:<38} {:>16} {:>16}",
            "day", "recorder", "visits completed", "vitals recorded"
        );
        println!("{}", "-".repeat(12 + 1 + 38 + 1 + 16 + 1 + 16));
        let mut total = Counts::default();
        for ((day, recorder), c) in &self.counts {
            println!(
                "{:<12} {:<38} {:>16} {:>16}",
                day.to_string(),
                recorder,
                c.visits_completed,
                c.vitals_recorded
            );
            total.visits_completed += c.visits_completed;
            total.vitals_recorded += c.vitals_recorded;
        }
        println!(
            "{:<12} {:<38} {:>16} {:>16}",
            "total", "", total.visits_completed, total.vitals_recorded
        );
        println!();
        println!(
            "{} messages, {} distinct events, {} duplicates skipped, {} unreadable",
            self.messages,
            self.seen.len(),
            self.duplicates,
            self.unreadable
        );
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let brokers = env_or("KAFKA_BROKERS", "127.0.0.1:9092");
    let group = env_or("GROUP_ID", "carelog-daily-counts");
    let idle_secs: u64 = env_or("EXIT_AFTER_IDLE_SECS", "10")
        .parse()
        .context("EXIT_AFTER_IDLE_SECS must be a whole number of seconds")?;
    let idle = Duration::from_secs(idle_secs);

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", &group)
        // Read everything from the beginning, and keep no position: a report
        // over the whole history, recomputed on every run.
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        // Notice soon a topic the relay creates after we started.
        .set("topic.metadata.refresh.interval.ms", "5000")
        .create()
        .with_context(|| format!("cannot create a Kafka consumer for {brokers}"))?;
    consumer.subscribe(&TOPICS).context("cannot subscribe")?;
    eprintln!(
        "reading {} from {brokers} (group {group}); the table is printed after {idle_secs} s without messages or on Ctrl-C",
        TOPICS.join(", ")
    );

    let mut report = Report::default();
    let mut deadline = Instant::now() + idle;
    let mut last_error: Option<String> = None;
    loop {
        let message = tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            m = tokio::time::timeout_at(deadline, consumer.recv()) => match m {
                Err(_) => break, // idle long enough
                Ok(m) => m,
            },
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                // Broker down, topic not created yet, ...: librdkafka retries by
                // itself; say so once, and do not spin.
                let e = e.to_string();
                if last_error.as_ref() != Some(&e) {
                    eprintln!("kafka: {e}");
                    last_error = Some(e);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        last_error = None;
        deadline = Instant::now() + idle;
        report.messages += 1;
        let parsed = message
            .payload()
            .ok_or_else(|| "empty message".to_string())
            .and_then(|bytes| serde_json::from_slice::<Value>(bytes).map_err(|e| e.to_string()))
            .and_then(|envelope| report.add(&envelope));
        if let Err(e) = parsed {
            report.unreadable += 1;
            eprintln!(
                "skipping {} [{}] @{}: {e}",
                message.topic(),
                message.partition(),
                message.offset()
            );
        }
    }
    report.print();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_per_local_day_and_recorder_without_duplicates() {
        let mut r = Report::default();
        let scheduled = json!({"id": "1", "type": VISIT_SCHEDULED, "subject": "v1", "time": "2026-03-02T02:10:00.000Z",
            "actorid": "admin", "data": {"recorder_id": "rec"}});
        // 16:30 UTC on 4 March is 00:30 on 5 March in Shanghai.
        let completed = json!({"id": "2", "type": VISIT_COMPLETED, "subject": "v1", "time": "2026-03-04T16:30:00.000Z",
            "actorid": "admin", "data": {}});
        let vitals = json!({"id": "3", "type": VITALS_RECORDED, "subject": "h1", "time": "2026-03-05T01:20:00.000Z",
            "actorid": "rec", "data": {}});
        for e in [&scheduled, &completed, &completed, &vitals] {
            r.add(e).unwrap();
        }
        let day = NaiveDate::from_ymd_opt(2026, 3, 5).unwrap();
        let c = r.counts[&(day, "rec".to_string())];
        assert_eq!((c.visits_completed, c.vitals_recorded, r.duplicates), (1, 1, 1));
    }

    /// The example envelopes of `docs/events.md`, which `cargo test` checks
    /// are what the relay publishes for the documented story.
    fn documented_envelopes() -> Vec<Value> {
        include_str!("../docs/events.md")
            .split("```json\n")
            .skip(1)
            .map(|block| block.split("\n```").next().unwrap())
            .map(|json| serde_json::from_str(json).unwrap())
            .collect()
    }

    #[test]
    fn reads_the_envelopes_carelog_publishes() {
        // The documented examples, enveloped as the relay does: one visit
        // scheduled and completed, one vitals record, by the same recorder.
        let mut r = Report::default();
        for e in documented_envelopes() {
            r.add(&e).unwrap();
        }
        let recorders: Vec<&String> = r.counts.keys().map(|(_, rec)| rec).collect();
        assert_eq!(recorders.len(), 1, "{:?}", r.counts);
        let c = r.counts.values().next().unwrap();
        assert_eq!((c.visits_completed, c.vitals_recorded), (1, 1));
    }
}
