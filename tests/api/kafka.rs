//! The Kafka relay against a real Kafka-protocol broker, read back with a
//! standard Kafka client (librdkafka).

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use serde_json::{json, Value};

use crate::dual;
use crate::helpers::{spawn_app_with, Backend, TestApp};

dual!(
    every_event_reaches_kafka_once_in_order_without_identifiers,
    commands_keep_working_while_the_broker_is_down
);

pub fn brokers() -> String {
    std::env::var("CARELOG_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

pub fn prefix() -> String {
    format!("t{}.", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

/// Reads envelopes from the topics until `until` says enough, or the deadline:
/// each message stored once, as the broker holds it. A topic created after
/// the subscription (the relay creates them as it goes) makes the group
/// rebalance, and the consumer, with no committed offsets, reads the
/// partitions it had again from the start: such a re-read (the same topic,
/// partition and offset) is skipped, while an event published twice (two
/// offsets) is still counted twice.
pub async fn consume(
    brokers: &str,
    topics: &[String],
    deadline: Duration,
    until: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("test-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .expect("consumer");
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names).expect("subscribe");
    let mut got = Vec::new();
    let mut read = HashSet::new();
    let end = tokio::time::Instant::now() + deadline;
    while tokio::time::Instant::now() < end && !until(&got) {
        if let Ok(Ok(m)) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await {
            if !read.insert((m.topic().to_string(), m.partition(), m.offset())) {
                continue;
            }
            if let Some(Ok(text)) = m.payload_view::<str>() {
                got.push(serde_json::from_str(text).expect("envelope is JSON"));
            }
        }
    }
    got
}

async fn some_history(app: &TestApp) -> (String, String) {
    let (rid, _) = app.recorder(1).await;
    let fam = app.family("冯家").await;
    let patient = app.patient(&fam, "冯奶奶").await;
    app.patch(
        &format!("/patients/{patient}"),
        &app.admin_token,
        json!({"phone": "13811112222"}),
    )
    .await
    .ok();
    app.patch(
        &format!("/families/{fam}"),
        &app.admin_token,
        json!({"primary_address": "上海市长宁区1号"}),
    )
    .await
    .ok();
    let package = app.package().await;
    app.subscribe(&patient, &package, &rid).await;
    (fam, patient)
}

async fn expected_ids(app: &TestApp) -> (Vec<String>, HashSet<String>) {
    let events = app.state.store.read_after(0, 100_000).await.unwrap();
    let topics: HashSet<String> = events.iter().map(|e| e.aggregate_type.clone()).collect();
    let ids = events
        .iter()
        .map(|e| carelog::relay::envelope::event_id(&e.aggregate_type, &e.aggregate_id, e.sequence))
        .collect();
    (ids, topics)
}

async fn every_event_reaches_kafka_once_in_order_without_identifiers(b: Backend) {
    let prefix = prefix();
    let app = spawn_app_with(
        b,
        &[
            ("CARELOG_KAFKA_BROKERS", brokers()),
            ("CARELOG_KAFKA_TOPIC_PREFIX", prefix.clone()),
        ],
    )
    .await;
    some_history(&app).await;
    let (ids, types) = expected_ids(&app).await;
    let topics: Vec<String> = types.iter().map(|t| format!("{prefix}{t}")).collect();
    let want: HashSet<&String> = ids.iter().collect();
    let got = consume(&brokers(), &topics, Duration::from_secs(60), |got| {
        let seen: HashSet<&str> = got.iter().filter_map(|v| v["id"].as_str()).collect();
        want.iter().all(|id| seen.contains(id.as_str()))
    })
    .await;
    // Every stored event exactly once.
    let mut count: HashMap<String, usize> = HashMap::new();
    for v in &got {
        *count.entry(v["id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(count.get(id), Some(&1), "event {id} published exactly once");
    }
    // The envelope.
    for v in &got {
        assert_eq!(v["specversion"], "1.0");
        assert!(v["type"].as_str().unwrap().starts_with("carelog."));
        assert!(v["source"].as_str().unwrap().starts_with("carelog/"));
        assert!(v["subject"].is_string() && v["time"].is_string() && v["data"].is_object());
        assert!(v["position"].as_i64().unwrap() > 0 && v["sequence"].as_i64().unwrap() > 0);
    }
    let patient_created = got
        .iter()
        .find(|v| v["type"] == "carelog.patient.PatientRegistered")
        .unwrap();
    assert_eq!(patient_created["actorrole"], "admin");
    assert!(patient_created["correlationid"].is_string());
    // Per aggregate, in order.
    let mut last: HashMap<String, i64> = HashMap::new();
    for v in &got {
        let subject = v["subject"].as_str().unwrap().to_string();
        let seq = v["sequence"].as_i64().unwrap();
        assert!(last.get(&subject).is_none_or(|prev| *prev < seq), "order of {subject}");
        last.insert(subject, seq);
    }
    // No clear identifiers.
    let all = serde_json::to_string(&got).unwrap();
    for secret in [
        "11010519491231002X",
        "13811112222",
        "13912345678",
        "13800000000",
        "冯奶奶",
        "$argon2",
    ] {
        assert!(!all.contains(secret), "{secret} must not leave in clear");
    }
    // Health shows the broker and no lag.
    let mut lag = Value::Null;
    for _ in 0..50 {
        let h: Value = app
            .client
            .get(format!("{}/health", app.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(h["data"]["broker"], "up");
        lag = h["data"]["relay_lag"].clone();
        if lag == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(lag, 0);

    // `carelog relay --from-position N` re-publishes history for a new consumer.
    let replay_prefix = format!("r{prefix}");
    let mut vars = app.vars.clone();
    vars.insert("CARELOG_KAFKA_BROKERS".into(), brokers());
    vars.insert("CARELOG_KAFKA_TOPIC_PREFIX".into(), replay_prefix.clone());
    let out = Command::new(env!("CARGO_BIN_EXE_carelog"))
        .args(["relay", "--from-position", "3"])
        .envs(&vars)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let replay_topics: Vec<String> = types.iter().map(|t| format!("{replay_prefix}{t}")).collect();
    let n = ids.len() - 2;
    let replayed = consume(&brokers(), &replay_topics, Duration::from_secs(60), |got| {
        got.len() >= n
    })
    .await;
    assert_eq!(replayed.len(), n);
    assert!(replayed.iter().all(|v| v["position"].as_i64().unwrap() >= 3));
}

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_broker(port: u16) -> Broker {
    let bin = std::env::var("CARELOG_TEST_TANSU_BIN").unwrap_or_else(|_| "tansu".into());
    let url = format!("tcp://127.0.0.1:{port}");
    let broker = Broker(
        Command::new(&bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("this test starts and stops its own broker and needs tansu ({bin}): {e}")),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return broker;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("tansu did not start on {port}");
}

async fn commands_keep_working_while_the_broker_is_down(b: Backend) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let broker_addr = format!("127.0.0.1:{port}");
    let mut broker = start_broker(port);
    let prefix = prefix();
    let app = spawn_app_with(
        b,
        &[
            ("CARELOG_KAFKA_BROKERS", broker_addr.clone()),
            ("CARELOG_KAFKA_TOPIC_PREFIX", prefix.clone()),
        ],
    )
    .await;
    let fam = app.family("卫家").await;
    let topic = vec![format!("{prefix}family")];
    let first = consume(&broker_addr, &topic, Duration::from_secs(60), |g| !g.is_empty()).await;
    assert_eq!(first.len(), 1);

    // The broker dies; commands keep succeeding; health says so.
    drop(broker);
    for i in 0..5 {
        app.patch(
            &format!("/families/{fam}"),
            &app.admin_token,
            json!({"primary_address": format!("地址{i}")}),
        )
        .await
        .ok();
    }
    let mut down = false;
    for _ in 0..40 {
        let r = app.client.get(format!("{}/health", app.base)).send().await.unwrap();
        let status = r.status().as_u16();
        let h: Value = r.json().await.unwrap();
        if h["data"]["broker"] == "down" {
            assert_eq!(status, 503);
            assert!(h["data"]["relay_lag"].as_i64().unwrap() >= 1);
            down = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(down, "health reports the broker down");

    // Back up (empty, in-memory): the backlog drains, in order.
    broker = start_broker(port);
    let drained = consume(&broker_addr, &topic, Duration::from_secs(90), |g| {
        g.iter()
            .filter(|v| v["type"] == "carelog.family.FamilyUpdated")
            .map(|v| v["id"].clone())
            .collect::<HashSet<_>>()
            .len()
            >= 5
    })
    .await;
    let seqs: Vec<i64> = drained
        .iter()
        .filter(|v| v["type"] == "carelog.family.FamilyUpdated")
        .map(|v| v["sequence"].as_i64().unwrap())
        .collect();
    let mut dedup = seqs.clone();
    dedup.dedup();
    assert_eq!(dedup.iter().copied().collect::<HashSet<_>>().len(), 5, "{seqs:?}");
    assert!(dedup.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    drop(broker);
}

/// `consume` counts each stored message once, also when a topic created after
/// it subscribed makes the group rebalance and the consumer read its
/// partitions again from the start (which made the exactly-once test above
/// fail once under the full suite's load).
#[tokio::test]
async fn consume_reads_each_message_once_across_a_rebalance() {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let p = prefix();
    let (first, later) = (format!("{p}first"), format!("{p}later"));
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    let new_topic = NewTopic::new(&first, 1, TopicReplication::Fixed(1));
    admin.create_topics(&[new_topic], &AdminOptions::new()).await.unwrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers())
        .create()
        .unwrap();
    for i in 0..3 {
        producer
            .send(
                FutureRecord::to(&first)
                    .key("k")
                    .payload(&json!({ "i": i }).to_string()),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let (later_topic, broker) = (later.clone(), brokers());
    let create_later = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", &broker).create().unwrap();
        let new_topic = NewTopic::new(&later_topic, 1, TopicReplication::Fixed(1));
        admin.create_topics(&[new_topic], &AdminOptions::new()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &broker).create().unwrap();
        producer
            .send(
                FutureRecord::to(&later_topic)
                    .key("k")
                    .payload(&json!({ "i": 3 }).to_string()),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    });
    let got = consume(&brokers(), &[first, later], Duration::from_secs(30), |got| {
        got.len() >= 4
    })
    .await;
    create_later.await.unwrap();
    let values: Vec<i64> = got.iter().map(|v| v["i"].as_i64().unwrap()).collect();
    assert_eq!(values, vec![0, 1, 2, 3], "each stored message once, in order");
}
