//! The Kafka relay: follows the event store by global position and publishes
//! every event, in order, with an idempotent producer, keyed by aggregate id.
//!
//! Delivery is at-least-once: the checkpoint (in the event store database)
//! moves only over events the broker acknowledged, so a crash re-publishes at
//! most the unacknowledged tail, with the same event ids. One relay runs at a
//! time (a leader lock in the event store); commands never wait for it, so a
//! broker outage delays publishing but not the API.

pub mod envelope;

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashSet;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::RwLock;

use crate::store::{on_backend, on_writer, Backend, EventStore};

const CHECKPOINT: &str = "kafka";
const BATCH: i64 = 500;

#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub brokers: String,
    /// Topic of an aggregate type: `<prefix><aggregate_type>`.
    pub topic_prefix: String,
    /// Key of the keyed hashes of personal identifiers.
    pub pii_key: Vec<u8>,
    /// Partitions and replication factor of the topics the relay creates.
    pub partitions: i32,
    pub replication: i32,
}

/// What `/health` shows of the relay.
#[derive(Debug, Clone, Default)]
pub struct RelayStatus {
    pub broker_up: bool,
    pub last_error: Option<String>,
}

#[derive(Clone)]
pub struct RelayHandle {
    pub status: Arc<RwLock<RelayStatus>>,
    producer: FutureProducer,
}

impl RelayHandle {
    /// Asks the broker for metadata; true when it answers in time.
    pub async fn probe(&self) -> bool {
        let producer = self.producer.clone();
        let up =
            tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, Duration::from_secs(2)).is_ok())
                .await
                .unwrap_or(false);
        self.status.write().await.broker_up = up;
        up
    }
}

pub fn producer(brokers: &str) -> Result<FutureProducer, rdkafka::error::KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        // Idempotence: retries never duplicate or reorder within a partition.
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "15000")
        .set("linger.ms", "5")
        .set("reconnect.backoff.max.ms", "2000")
        .create()
}

/// Creates the topics the relay is about to use if they do not exist, so
/// publishing works on clusters where automatic topic creation is off.
struct Topics {
    admin: AdminClient<DefaultClientContext>,
    ensured: HashSet<String>,
}

impl Topics {
    fn new(brokers: &str) -> Result<Self, rdkafka::error::KafkaError> {
        let admin = ClientConfig::new().set("bootstrap.servers", brokers).create()?;
        Ok(Self {
            admin,
            ensured: HashSet::new(),
        })
    }

    async fn ensure(&mut self, names: &[String], config: &RelayConfig) {
        let mut missing: Vec<&String> = names.iter().filter(|n| !self.ensured.contains(*n)).collect();
        missing.sort();
        missing.dedup();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        // One topic per request: some Kafka-compatible brokers mishandle batches.
        for name in missing {
            let topic = NewTopic::new(
                name.as_str(),
                config.partitions,
                TopicReplication::Fixed(config.replication),
            );
            match self.admin.create_topics(&[topic], &options).await {
                Ok(results) => {
                    for r in results {
                        match r {
                            Ok(n) | Err((n, RDKafkaErrorCode::TopicAlreadyExists)) => {
                                self.ensured.insert(n);
                            }
                            Err((n, code)) => tracing::warn!(topic = %n, %code, "relay: cannot create topic"),
                        }
                    }
                }
                // Publishing may still work where the broker creates topics itself.
                Err(e) => tracing::warn!(topic = %name, error = %e, "relay: cannot create topic"),
            }
        }
    }
}

/// The relay's checkpoint.
pub async fn checkpoint(store: &EventStore) -> Result<i64, sqlx::Error> {
    let sql = "SELECT position FROM relay_checkpoints WHERE name = $1";
    let pos: Option<i64> = on_backend!(store.backend(), |pool| sqlx::query_scalar(sql)
        .bind(CHECKPOINT)
        .fetch_optional(pool)
        .await?);
    Ok(pos.unwrap_or(0))
}

async fn set_checkpoint(store: &EventStore, position: i64) -> Result<(), sqlx::Error> {
    let sql = "INSERT INTO relay_checkpoints (name, position) VALUES ($1, $2)
               ON CONFLICT (name) DO UPDATE SET position = excluded.position WHERE relay_checkpoints.position < excluded.position";
    on_writer!(store.backend(), |pool| sqlx::query(sql)
        .bind(CHECKPOINT)
        .bind(position)
        .execute(pool)
        .await
        .map(|_| ()))?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("event store: {0}")]
    Store(#[from] sqlx::Error),
    #[error("event store: {0}")]
    Read(#[from] anyhow::Error),
    #[error("broker: {0}")]
    Broker(String),
}

/// The key of the keyed hashes in one event: `CARELOG_KAFKA_PII_KEY` combined
/// with a secret of the event's data subject (see `Privacy::hash_secret`), so
/// the hashes of an erased patient's identifiers can no longer be confirmed
/// by anyone; the configured key alone for events without a data subject.
async fn pseudonym_key(
    store: &EventStore,
    pii_key: &[u8],
    e: &projections::StoredEvent,
) -> Result<Vec<u8>, crate::privacy::PrivacyError> {
    use hmac::Mac;
    let secret = store
        .privacy()
        .hash_secret(&e.aggregate_type, &e.aggregate_id, &e.payload)
        .await?;
    Ok(match secret {
        None => pii_key.to_vec(),
        Some(secret) => {
            let mut mac = crate::privacy::hmac_sha256(pii_key);
            mac.update(&secret);
            mac.finalize().into_bytes().to_vec()
        }
    })
}

/// Publishes the events after `after` up to `BATCH` of them, in order, and
/// returns the position of the last one the broker acknowledged (events after
/// a failure are not counted even if they were acknowledged: they will be
/// published again, with the same ids).
async fn publish_batch(
    store: &EventStore,
    producer: &FutureProducer,
    topics: &mut Topics,
    config: &RelayConfig,
    after: i64,
) -> Result<Option<i64>, (Option<i64>, RelayError)> {
    let events = store
        .next_batch(after, BATCH)
        .await
        .map_err(|e| (None, e.into()))?
        .events;
    if events.is_empty() {
        return Ok(None);
    }
    let names: Vec<String> = events
        .iter()
        .map(|e| envelope::topic(&config.topic_prefix, &e.aggregate_type))
        .collect();
    topics.ensure(&names, config).await;
    let mut deliveries = Vec::with_capacity(events.len());
    for e in &events {
        let key = pseudonym_key(store, &config.pii_key, e)
            .await
            .map_err(|err| (None, RelayError::Read(err.into())))?;
        let body = envelope::envelope(e, &key).to_string();
        let topic = envelope::topic(&config.topic_prefix, &e.aggregate_type);
        let id = envelope::event_id(&e.aggregate_type, &e.aggregate_id, e.sequence);
        let ce_type = format!("carelog.{}.{}", e.aggregate_type, e.event_type);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "ce_id",
                value: Some(id.as_str()),
            })
            .insert(Header {
                key: "ce_type",
                value: Some(ce_type.as_str()),
            })
            .insert(Header {
                key: "content-type",
                value: Some("application/cloudevents+json"),
            });
        let record = FutureRecord::to(&topic)
            .key(&e.aggregate_id)
            .payload(&body)
            .headers(headers);
        // Enqueued in position order; the idempotent producer keeps that order per partition.
        match producer.send_result(record) {
            Ok(delivery) => deliveries.push((e.position, delivery)),
            Err((err, _)) => {
                let acked = await_prefix(deliveries).await;
                return Err((acked, RelayError::Broker(err.to_string())));
            }
        }
    }
    let last = events.last().map(|e| e.position);
    let acked = await_prefix(deliveries).await;
    if acked == last {
        Ok(acked)
    } else {
        Err((acked, RelayError::Broker("delivery failed".into())))
    }
}

/// Waits for deliveries in order; the position of the last one in the
/// unbroken acknowledged prefix.
async fn await_prefix(deliveries: Vec<(i64, rdkafka::producer::DeliveryFuture)>) -> Option<i64> {
    let mut acked = None;
    let mut broken = false;
    for (position, delivery) in deliveries {
        let ok = matches!(delivery.await, Ok(Ok(_)));
        if ok && !broken {
            acked = Some(position);
        } else {
            broken = true;
        }
    }
    acked
}

/// Starts the relay in the background: waits for the leader lock, then
/// publishes forever with backoff on broker errors.
pub fn start(
    store: EventStore,
    config: RelayConfig,
) -> Result<(RelayHandle, tokio::task::JoinHandle<()>), rdkafka::error::KafkaError> {
    let handle = RelayHandle {
        status: Arc::new(RwLock::new(RelayStatus::default())),
        producer: producer(&config.brokers)?,
    };
    let relay = Relay {
        publisher: producer(&config.brokers)?,
        topics: Topics::new(&config.brokers)?,
        status: handle.status.clone(),
        probe: handle.clone(),
        store: store.clone(),
        config,
    };
    Ok((handle, crate::follower::spawn(store, relay)))
}

/// The relay as a follower: not replayable (what is published stays
/// published; `carelog relay --from-position` re-publishes on purpose), its
/// checkpoint in the event store's `relay_checkpoints`, moved to the longest
/// prefix of a batch the broker acknowledged (at-least-once, in order).
struct Relay {
    store: EventStore,
    config: RelayConfig,
    publisher: FutureProducer,
    topics: Topics,
    status: Arc<RwLock<RelayStatus>>,
    probe: RelayHandle,
}

#[async_trait::async_trait]
impl crate::follower::Follower for Relay {
    fn name(&self) -> String {
        "relay:kafka".into()
    }
    fn replayable(&self) -> bool {
        false
    }
    fn backoff(&self) -> (Duration, Duration) {
        (Duration::from_millis(500), Duration::from_secs(10))
    }
    async fn lead(&mut self) {
        tracing::info!(brokers = %self.config.brokers, "kafka relay is the leader");
    }
    async fn checkpoint(&self) -> anyhow::Result<i64> {
        Ok(checkpoint(&self.store).await?)
    }
    async fn step(&mut self) -> anyhow::Result<crate::follower::Step> {
        let after = checkpoint(&self.store).await?;
        match publish_batch(&self.store, &self.publisher, &mut self.topics, &self.config, after).await {
            Ok(Some(last)) => {
                if let Err(e) = set_checkpoint(&self.store, last).await {
                    tracing::warn!(error = %e, "relay: cannot store checkpoint");
                }
                let mut s = self.status.write().await;
                s.broker_up = true;
                s.last_error = None;
                Ok(crate::follower::Step::Moved)
            }
            Ok(None) => Ok(crate::follower::Step::CaughtUp),
            Err((acked, e)) => {
                if let Some(last) = acked {
                    let _ = set_checkpoint(&self.store, last).await;
                }
                {
                    let mut s = self.status.write().await;
                    s.broker_up = false;
                    s.last_error = Some(e.to_string());
                }
                // A broker that came back may have lost topics, and an idempotent
                // producer can be left in a fatal state: start both afresh.
                self.topics.ensured.clear();
                match producer(&self.config.brokers) {
                    Ok(p) => self.publisher = p,
                    Err(e) => tracing::warn!(error = %e, "relay: cannot recreate the producer"),
                }
                self.probe.probe().await;
                Err(anyhow::anyhow!("relay: publishing failed: {e}"))
            }
        }
    }
}

/// Re-publishes the history from `from` (exclusive of nothing: `from` itself
/// is included) up to the current head, without touching the relay's
/// checkpoint: for a new consumer that needs the past.
pub async fn republish(store: &EventStore, config: &RelayConfig, from: i64) -> Result<i64, RelayError> {
    let producer = producer(&config.brokers).map_err(|e| RelayError::Broker(e.to_string()))?;
    let mut topics = Topics::new(&config.brokers).map_err(|e| RelayError::Broker(e.to_string()))?;
    let head = store.head().await?;
    let mut after = from.saturating_sub(1).max(0);
    let mut count = 0;
    while after < head {
        match publish_batch(store, &producer, &mut topics, config, after).await {
            Ok(Some(last)) => {
                count += last.min(head) - after;
                after = last;
            }
            Ok(None) => break,
            Err((_, e)) => return Err(e),
        }
    }
    Ok(count)
}
