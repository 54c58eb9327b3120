//! Typed settings, read once from the environment (`CARELOG_*`), optionally
//! completed by a `KEY=VALUE` file named by `CARELOG_CONFIG`. A bad value stops
//! start-up with one line naming the setting.
//!
//! [`Settings`] is a tree of groups, as zero2prod's `configuration.rs` is: each
//! group ([`HttpSettings`], [`StoreSettings`], [`TokenSettings`],
//! [`PrivacySettings`], [`KafkaSettings`], [`FileSettings`] with
//! [`S3Settings`], [`AlertSettings`], [`FieldWork`], [`Limits`],
//! [`FrontDoor`], [`EvvPolicy`]) owns its defaults (its `Default`), its parsing (its
//! `from_env`) and the derivation of its secrets, which are wrapped in
//! [`Secret`] so they never print. The variable names and defaults are the
//! README's configuration table: a contract, not an implementation detail.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono_tz::Tz;
use domain::alert::EscalationPolicy;
use domain::evv::EvvPolicy;
use domain::vitals::AlertThresholds;

use crate::privacy::MasterKey;
use crate::relay::RelayConfig;

/// A value that must never be printed (logs, panics, debug output).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A setting that is present but wrong: its variable and why.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct SettingsError {
    pub name: &'static str,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the server listens.
    pub http: HttpSettings,
    /// Where the events and the read models live.
    pub stores: StoreSettings,
    /// Access and refresh tokens.
    pub tokens: TokenSettings,
    /// The master key of crypto-shredding.
    pub privacy: PrivacySettings,
    /// Publishing to Kafka; `None` when `CARELOG_KAFKA_BROKERS` is unset.
    pub kafka: Option<KafkaSettings>,
    /// Where uploaded files are stored.
    pub files: FileSettings,
    /// `CARELOG_ALERT_*`: vital-sign thresholds that raise an alert by themselves, and its escalation.
    pub alerts: AlertSettings,
    /// The rules of recorders' work: what "today" is, how long a record stays open.
    pub field_work: FieldWork,
    /// Bounds on what one request may send, and how long its answer is kept.
    pub limits: Limits,
    /// The front door: headers, CORS, rate limits, trusted proxies, login throttling.
    pub front_door: FrontDoor,
    /// `CARELOG_EVV_*`: the limits visit verification holds visits to.
    pub evv: EvvPolicy,
    /// The recorder's phone: offline sync and the day's route.
    pub sync: SyncSettings,
    /// `CARELOG_WECHAT_*`: WeChat login and subscribe messages; off unless the
    /// app id and secret are both set.
    pub wechat: WechatSettings,
    /// `CARELOG_JOBS_*`: the scheduled jobs.
    pub jobs: JobSettings,
}

/// Where the server listens.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `CARELOG_BIND`, default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// `CARELOG_METRICS_BIND`: a separate listener for `/metrics` (no token
    /// there; keep it private). Unset: `/metrics` on the API listener, admins only.
    pub metrics_bind: Option<SocketAddr>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_bind: None,
        }
    }
}

impl HttpSettings {
    fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let d = Self::default();
        Ok(HttpSettings {
            bind: env.socket("CARELOG_BIND")?.unwrap_or(d.bind),
            metrics_bind: env.socket("CARELOG_METRICS_BIND")?.or(d.metrics_bind),
        })
    }
}

/// Where the events and the read models live: servers when their URLs are
/// set, SQLite files in the data dir otherwise (embedded mode).
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// `CARELOG_DATA_DIR`, default `./data`: embedded databases, generated secrets, uploads.
    pub data_dir: PathBuf,
    /// `CARELOG_EVENT_STORE_URL` (`postgres://…`); unset = SQLite under the data dir.
    pub event_store_url: Option<Secret>,
    /// `CARELOG_READ_STORE_URL` (`mysql://…`); unset = SQLite under the data dir.
    pub read_store_url: Option<Secret>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            data_dir: PathBuf::from("./data"),
            event_store_url: None,
            read_store_url: None,
        }
    }
}

impl StoreSettings {
    fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let d = Self::default();
        let event_store_url = env.get("CARELOG_EVENT_STORE_URL");
        if let Some(u) = &event_store_url {
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return Err(SettingsError {
                    name: "CARELOG_EVENT_STORE_URL",
                    reason: "must start with postgres://".into(),
                });
            }
        }
        let read_store_url = env.get("CARELOG_READ_STORE_URL");
        if let Some(u) = &read_store_url {
            if !(u.starts_with("mysql://") || u.starts_with("mariadb://") || u.starts_with("sqlite:")) {
                return Err(SettingsError {
                    name: "CARELOG_READ_STORE_URL",
                    reason: "must start with mysql://".into(),
                });
            }
        }
        Ok(StoreSettings {
            data_dir: env.get("CARELOG_DATA_DIR").map(PathBuf::from).unwrap_or(d.data_dir),
            event_store_url: event_store_url.map(Secret),
            read_store_url: read_store_url.map(Secret),
        })
    }

    /// Whether any store is a server: then the deployment faces a network
    /// (HSTS on by default) and instances share secrets.
    pub fn uses_servers(&self) -> bool {
        self.event_store_url.is_some() || self.read_store_url.is_some()
    }
}

/// Access and refresh tokens: their signing secret and lifetimes.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `CARELOG_JWT_SECRET` (at least 32 characters); embedded mode generates
    /// one and keeps it in the data dir ([`TokenSettings::secret`]).
    pub jwt_secret: Option<Secret>,
    /// `CARELOG_ACCESS_TOKEN_TTL_SECS`, default 2 h.
    pub access_ttl_secs: i64,
    /// `CARELOG_REFRESH_TOKEN_TTL_SECS`, default 30 d.
    pub refresh_ttl_secs: i64,
    /// `CARELOG_SESSION_CACHE_SECS`, default 2: how long a session check is
    /// kept (0: not at all); see [`crate::sessions`].
    pub session_cache_secs: u32,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings {
            jwt_secret: None,
            access_ttl_secs: 2 * 3600,
            refresh_ttl_secs: 30 * 24 * 3600,
            session_cache_secs: 2,
        }
    }
}

/// The file of the data dir that keeps a generated JWT secret.
pub const JWT_SECRET_FILE: &str = "jwt_secret";
/// The file of the data dir that keeps a generated master key.
pub const MASTER_KEY_FILE: &str = "master_key";

impl TokenSettings {
    fn from_env(env: &Env, stores: &StoreSettings) -> Result<Self, SettingsError> {
        let d = Self::default();
        let jwt_secret = env.get("CARELOG_JWT_SECRET");
        if let Some(s) = &jwt_secret {
            if s.len() < 32 {
                return Err(SettingsError {
                    name: "CARELOG_JWT_SECRET",
                    reason: "must be at least 32 characters".into(),
                });
            }
        }
        if jwt_secret.is_none() && stores.event_store_url.is_some() {
            // Several servers share a database: they must share the secret, so it cannot be generated.
            return Err(SettingsError {
                name: "CARELOG_JWT_SECRET",
                reason: "required when CARELOG_EVENT_STORE_URL is set".into(),
            });
        }
        Ok(TokenSettings {
            jwt_secret: jwt_secret.map(Secret),
            access_ttl_secs: env.positive("CARELOG_ACCESS_TOKEN_TTL_SECS", d.access_ttl_secs)?,
            refresh_ttl_secs: env.positive("CARELOG_REFRESH_TOKEN_TTL_SECS", d.refresh_ttl_secs)?,
            session_cache_secs: env.whole("CARELOG_SESSION_CACHE_SECS", d.session_cache_secs)?,
        })
    }

    /// The JWT secret: the configured one, or one generated once and kept in
    /// `data_dir` (embedded mode, one instance).
    pub fn secret(&self, data_dir: &Path) -> anyhow::Result<Secret> {
        if let Some(s) = &self.jwt_secret {
            return Ok(s.clone());
        }
        kept_secret(&data_dir.join(JWT_SECRET_FILE), || {
            hex::encode(rand::random::<[u8; 32]>())
        })
        .map(Secret)
    }
}

/// The master key of crypto-shredding.
#[derive(Debug, Clone, Default)]
pub struct PrivacySettings {
    /// `CARELOG_MASTER_KEY` (64 hex digits): wraps the data subjects' keys.
    /// Embedded mode generates one in the data dir; with PostgreSQL and no
    /// key set, one is derived from the JWT secret (with a warning: set a
    /// separate key in production). See [`PrivacySettings::master_key`].
    pub master_key: Option<Secret>,
}

impl PrivacySettings {
    fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let master_key = env.get("CARELOG_MASTER_KEY");
        if let Some(k) = &master_key {
            MasterKey::parse(k).map_err(|reason| SettingsError {
                name: "CARELOG_MASTER_KEY",
                reason,
            })?;
        }
        Ok(PrivacySettings {
            master_key: master_key.map(Secret),
        })
    }

    /// The master key: the configured one; else derived from the JWT secret
    /// that every instance of a shared deployment has (PostgreSQL; warned: a
    /// separate key can be rotated on its own); else generated once and kept
    /// in the data dir (embedded).
    pub fn master_key(&self, stores: &StoreSettings, tokens: &TokenSettings) -> anyhow::Result<MasterKey> {
        if let Some(k) = &self.master_key {
            return MasterKey::parse(k.expose()).map_err(|e| anyhow::anyhow!("CARELOG_MASTER_KEY {e}"));
        }
        if stores.event_store_url.is_some() {
            tracing::warn!(
                "CARELOG_MASTER_KEY is not set; deriving it from CARELOG_JWT_SECRET (set a separate key in production)"
            );
            let secret = tokens.secret(&stores.data_dir)?;
            return Ok(MasterKey::derive("carelog-master-key", secret.expose()));
        }
        let path = stores.data_dir.join(MASTER_KEY_FILE);
        let hex = kept_secret(&path, || MasterKey::generate().to_hex())?;
        MasterKey::parse(&hex).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }
}

/// Publishing every event to Kafka (`docs/events.md`).
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// `CARELOG_KAFKA_BROKERS`: the bootstrap servers.
    pub brokers: String,
    /// `CARELOG_KAFKA_TOPIC_PREFIX`, default `carelog.`: topics are `<prefix><aggregate_type>`.
    pub topic_prefix: String,
    /// `CARELOG_KAFKA_PII_KEY`: key of the hashes of identifiers on Kafka
    /// (default: derived from the JWT secret, [`KafkaSettings::relay_config`]).
    pub pii_key: Option<Secret>,
    /// `CARELOG_KAFKA_PARTITIONS` (default 3), for the topics the relay creates.
    pub partitions: i32,
    /// `CARELOG_KAFKA_REPLICATION` (default 1), for the topics the relay creates.
    pub replication: i32,
}

impl KafkaSettings {
    /// Every Kafka variable is checked, also when no broker is set (a bad one
    /// stops start-up either way); `None` without brokers.
    fn from_env(env: &Env) -> Result<Option<Self>, SettingsError> {
        let settings = KafkaSettings {
            brokers: env.get("CARELOG_KAFKA_BROKERS").unwrap_or_default(),
            topic_prefix: env
                .get("CARELOG_KAFKA_TOPIC_PREFIX")
                .unwrap_or_else(|| "carelog.".into()),
            pii_key: env.secret("CARELOG_KAFKA_PII_KEY"),
            partitions: env.positive("CARELOG_KAFKA_PARTITIONS", 3)? as i32,
            replication: env.positive("CARELOG_KAFKA_REPLICATION", 1)? as i32,
        };
        Ok(Some(settings).filter(|s| !s.brokers.is_empty()))
    }

    /// The relay's configuration. The key of the keyed hashes is the
    /// configured one, else derived from the JWT secret (asked for only then).
    pub fn relay_config(&self, jwt_secret: impl FnOnce() -> anyhow::Result<Secret>) -> anyhow::Result<RelayConfig> {
        let pii_key = match &self.pii_key {
            Some(k) => k.expose().as_bytes().to_vec(),
            None => {
                use sha2::{Digest, Sha256};
                Sha256::digest(format!("carelog-pii:{}", jwt_secret()?.expose()).as_bytes()).to_vec()
            }
        };
        Ok(RelayConfig {
            brokers: self.brokers.clone(),
            topic_prefix: self.topic_prefix.clone(),
            pii_key,
            partitions: self.partitions,
            replication: self.replication,
        })
    }
}

/// Where uploaded files are stored: S3 when configured, else a local directory.
#[derive(Debug, Clone)]
pub struct FileSettings {
    /// `CARELOG_UPLOAD_DIR`, default `<data dir>/uploads`.
    pub upload_dir: PathBuf,
    /// `CARELOG_S3_BUCKET` and the other `CARELOG_S3_*`: files go to
    /// S3-compatible storage instead of the upload dir.
    pub s3: Option<S3Settings>,
}

impl FileSettings {
    fn from_env(env: &Env, stores: &StoreSettings) -> Result<Self, SettingsError> {
        Ok(FileSettings {
            upload_dir: env
                .get("CARELOG_UPLOAD_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| stores.data_dir.join("uploads")),
            s3: S3Settings::from_env(env),
        })
    }
}

/// Connection settings for S3-compatible object storage (AWS S3, MinIO, ...).
#[derive(Debug, Clone, Default)]
pub struct S3Settings {
    /// `CARELOG_S3_BUCKET`: the bucket holding the files; it must exist.
    pub bucket: String,
    /// `CARELOG_S3_ENDPOINT`: endpoint URL of a non-AWS service, e.g.
    /// `http://127.0.0.1:9000` for MinIO. `None` means AWS itself.
    pub endpoint: Option<String>,
    /// `CARELOG_S3_REGION`; `None` means `us-east-1`, which MinIO accepts by default.
    pub region: Option<String>,
    /// `CARELOG_S3_ACCESS_KEY_ID`; `None` falls back to the instance's AWS credentials.
    pub access_key_id: Option<String>,
    /// `CARELOG_S3_SECRET_ACCESS_KEY`: the secret for `access_key_id`.
    pub secret_access_key: Option<Secret>,
    /// `CARELOG_S3_ALLOW_HTTP` (`1`/`true`): allow plain `http://` endpoints
    /// (local MinIO); keep off in production.
    pub allow_http: bool,
}

impl S3Settings {
    /// `None` unless `CARELOG_S3_BUCKET` is set.
    fn from_env(env: &Env) -> Option<Self> {
        env.get("CARELOG_S3_BUCKET").map(|bucket| S3Settings {
            bucket,
            endpoint: env.get("CARELOG_S3_ENDPOINT"),
            region: env.get("CARELOG_S3_REGION"),
            access_key_id: env.get("CARELOG_S3_ACCESS_KEY_ID"),
            secret_access_key: env.secret("CARELOG_S3_SECRET_ACCESS_KEY"),
            allow_http: env
                .get("CARELOG_S3_ALLOW_HTTP")
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
        })
    }
}

/// Abnormal vitals: when they raise an alert, and what happens when nobody
/// acknowledges it.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// `CARELOG_ALERT_SYSTOLIC_HIGH` … `_HEART_RATE_HIGH`: the domain's
    /// thresholds, with the domain's defaults.
    pub thresholds: AlertThresholds,
    /// `CARELOG_ALERT_ESCALATE_URGENT_MIN` (default 15) and
    /// `CARELOG_ALERT_ESCALATE_ABNORMAL_MIN` (default 120): minutes an alert
    /// waits for its doctor's acknowledgement before it is escalated.
    pub escalation: EscalationPolicy,
    /// `CARELOG_ALERT_ESCALATION_TICK_SECS` (default 5): how often the server
    /// looks for alerts to escalate (an escalation is at most this late).
    pub escalation_tick: std::time::Duration,
}

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            thresholds: AlertThresholds::default(),
            escalation: EscalationPolicy::default(),
            escalation_tick: std::time::Duration::from_secs(5),
        }
    }
}

impl AlertSettings {
    fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let d = Self::default();
        let mut a = d.thresholds;
        a.systolic_high = env.positive_number("CARELOG_ALERT_SYSTOLIC_HIGH", a.systolic_high.into())? as u16;
        a.diastolic_high = env.positive_number("CARELOG_ALERT_DIASTOLIC_HIGH", a.diastolic_high.into())? as u16;
        a.systolic_urgent = env.positive_number("CARELOG_ALERT_SYSTOLIC_URGENT", a.systolic_urgent.into())? as u16;
        a.diastolic_urgent = env.positive_number("CARELOG_ALERT_DIASTOLIC_URGENT", a.diastolic_urgent.into())? as u16;
        a.spo2_low = env.positive_number("CARELOG_ALERT_SPO2_LOW", a.spo2_low)?;
        a.temperature_high = env.positive_number("CARELOG_ALERT_TEMPERATURE_HIGH", a.temperature_high)?;
        a.heart_rate_low = env.positive_number("CARELOG_ALERT_HEART_RATE_LOW", a.heart_rate_low.into())? as u16;
        a.heart_rate_high = env.positive_number("CARELOG_ALERT_HEART_RATE_HIGH", a.heart_rate_high.into())? as u16;
        // A year bounds the waits (and keeps instant arithmetic in range).
        let minutes = |name: &'static str, default: chrono::TimeDelta| -> Result<chrono::TimeDelta, SettingsError> {
            let m = env.positive(name, default.num_minutes())?;
            if m > 525_600 {
                return Err(SettingsError {
                    name,
                    reason: format!("{m} minutes is more than a year"),
                });
            }
            Ok(chrono::TimeDelta::minutes(m))
        };
        let escalation = EscalationPolicy {
            urgent_after: minutes("CARELOG_ALERT_ESCALATE_URGENT_MIN", d.escalation.urgent_after)?,
            abnormal_after: minutes("CARELOG_ALERT_ESCALATE_ABNORMAL_MIN", d.escalation.abnormal_after)?,
        };
        let tick = env.positive("CARELOG_ALERT_ESCALATION_TICK_SECS", d.escalation_tick.as_secs() as i64)?;
        Ok(Self {
            thresholds: a,
            escalation,
            escalation_tick: std::time::Duration::from_secs(tick as u64),
        })
    }
}

/// The rules of recorders' work.
#[derive(Debug, Clone)]
pub struct FieldWork {
    /// `CARELOG_TIMEZONE`, default `Asia/Shanghai`: what "today" means.
    pub timezone: Tz,
    /// `CARELOG_AMENDMENT_WINDOW_DAYS`, default 7: how long a recorder may amend a
    /// health record after writing it (or after an admin unlocked it).
    pub amendment_window_days: u32,
}

impl Default for FieldWork {
    fn default() -> Self {
        FieldWork {
            timezone: chrono_tz::Asia::Shanghai,
            amendment_window_days: 7,
        }
    }
}

impl FieldWork {
    fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let d = Self::default();
        let timezone = match env.get("CARELOG_TIMEZONE") {
            None => d.timezone,
            Some(v) => v.parse::<Tz>().map_err(|e| SettingsError {
                name: "CARELOG_TIMEZONE",
                reason: e.to_string(),
            })?,
        };
        // 0 closes records at once (every correction then needs an admin unlock);
        // a century is more than any record needs, and keeps date arithmetic in range.
        let amendment_window_days = match env.get("CARELOG_AMENDMENT_WINDOW_DAYS") {
            None => d.amendment_window_days,
            Some(v) => v.parse::<u32>().ok().filter(|d| *d <= 36_500).ok_or(SettingsError {
                name: "CARELOG_AMENDMENT_WINDOW_DAYS",
                reason: format!("{v:?} is not a number of days from 0 to 36500"),
            })?,
        };
        Ok(FieldWork {
            timezone,
            amendment_window_days,
        })
    }
}

/// `CARELOG_EVV_RADIUS_M` (default 500): a check-in or record farther than this
/// many metres from the family's home raises `away_from_home`;
/// `CARELOG_EVV_MIN_MINUTES` (default 15): a visit shorter than this raises
/// `short_visit`. The defaults are [`EvvPolicy`]'s.
fn evv_from_env(env: &Env) -> Result<EvvPolicy, SettingsError> {
    let d = EvvPolicy::default();
    let radius_m = match env.get("CARELOG_EVV_RADIUS_M") {
        None => d.radius_m,
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|m| m.is_finite() && (1.0..=100_000.0).contains(m))
            .ok_or(SettingsError {
                name: "CARELOG_EVV_RADIUS_M",
                reason: format!("{v:?} is not a number of metres from 1 to 100000"),
            })?,
    };
    let min_minutes = match env.get("CARELOG_EVV_MIN_MINUTES") {
        None => d.min_minutes,
        Some(v) => v.parse::<u32>().ok().filter(|m| *m <= 1440).ok_or(SettingsError {
            name: "CARELOG_EVV_MIN_MINUTES",
            reason: format!("{v:?} is not a number of minutes from 0 to 1440"),
        })?,
    };
    Ok(EvvPolicy { radius_m, min_minutes })
}

/// The recorder's phone: what an offline day may replay, and how its route is planned.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// `CARELOG_ROUTE_WINDOW_MIN`, default 60: how far (minutes) the day's route may move a visit
    /// from its scheduled time (see `domain::route`).
    pub route_window_min: u32,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings { route_window_min: 60 }
    }
}

impl SyncSettings {
    fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let d = Self::default();
        // Up to a whole day: beyond that every order is allowed anyway.
        let route_window_min = match env.get("CARELOG_ROUTE_WINDOW_MIN") {
            None => d.route_window_min,
            Some(v) => v.parse::<u32>().ok().filter(|m| *m <= 1440).ok_or(SettingsError {
                name: "CARELOG_ROUTE_WINDOW_MIN",
                reason: format!("{v:?} is not a number of minutes from 0 to 1440"),
            })?,
        };
        Ok(SyncSettings { route_window_min })
    }
}

/// WeChat (the recorders' mini-program): login by `code2session`, and
/// subscribe messages for the notification kinds that have a template.
/// Unconfigured (no app id or no secret): WeChat login answers 404
/// `wechat_not_configured` and notifications stay in the app.
#[derive(Debug, Clone)]
pub struct WechatSettings {
    /// `CARELOG_WECHAT_APP_ID`.
    pub app_id: Option<String>,
    /// `CARELOG_WECHAT_APP_SECRET`: never logged.
    pub app_secret: Option<Secret>,
    /// `CARELOG_WECHAT_API_BASE`, default `https://api.weixin.qq.com` (tests point it at a double).
    pub api_base: String,
    /// `CARELOG_WECHAT_TEMPLATE_VISIT_REMINDER`: the template of `visit_reminder` messages.
    pub template_visit_reminder: Option<String>,
    /// `CARELOG_WECHAT_TEMPLATE_ORDER_REQUEST`: `order_request`, `order_request_abnormal`, `order_request_urgent`.
    pub template_order_request: Option<String>,
    /// `CARELOG_WECHAT_TEMPLATE_ALERT`: `alert_escalated`, `alert_escalated_admin`.
    pub template_alert: Option<String>,
    /// `CARELOG_WECHAT_PUSH_MAX_ATTEMPTS`, default 5: sends of one message before it is given up.
    pub push_max_attempts: u32,
    /// `CARELOG_WECHAT_PUSH_RETRY_SECS`, default 30: the wait after the first failed send,
    /// doubled after each further one.
    pub push_retry_secs: i64,
    /// `CARELOG_WECHAT_TIMEOUT_SECS`, default 5: one HTTP call to WeChat.
    pub timeout_secs: i64,
}

impl Default for WechatSettings {
    fn default() -> Self {
        WechatSettings {
            app_id: None,
            app_secret: None,
            api_base: "https://api.weixin.qq.com".into(),
            template_visit_reminder: None,
            template_order_request: None,
            template_alert: None,
            push_max_attempts: 5,
            push_retry_secs: 30,
            timeout_secs: 5,
        }
    }
}

impl WechatSettings {
    fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let d = Self::default();
        let api_base = env.get("CARELOG_WECHAT_API_BASE").unwrap_or(d.api_base);
        if url::Url::parse(&api_base).map_or(true, |u| !matches!(u.scheme(), "http" | "https")) {
            return Err(SettingsError {
                name: "CARELOG_WECHAT_API_BASE",
                reason: format!("{api_base:?} is not an http(s) URL"),
            });
        }
        Ok(WechatSettings {
            app_id: env.get("CARELOG_WECHAT_APP_ID"),
            app_secret: env.secret("CARELOG_WECHAT_APP_SECRET"),
            api_base: api_base.trim_end_matches('/').to_string(),
            template_visit_reminder: env.get("CARELOG_WECHAT_TEMPLATE_VISIT_REMINDER"),
            template_order_request: env.get("CARELOG_WECHAT_TEMPLATE_ORDER_REQUEST"),
            template_alert: env.get("CARELOG_WECHAT_TEMPLATE_ALERT"),
            push_max_attempts: env
                .positive("CARELOG_WECHAT_PUSH_MAX_ATTEMPTS", d.push_max_attempts.into())?
                .min(100) as u32,
            push_retry_secs: env.positive("CARELOG_WECHAT_PUSH_RETRY_SECS", d.push_retry_secs)?,
            timeout_secs: env.positive("CARELOG_WECHAT_TIMEOUT_SECS", d.timeout_secs)?,
        })
    }

    /// Whether WeChat is on: both the app id and the secret are set.
    pub fn configured(&self) -> bool {
        self.app_id.is_some() && self.app_secret.is_some()
    }

    /// The subscribe-message template of a notification kind, if one is configured.
    pub fn template_for(&self, kind: &str) -> Option<&str> {
        match kind {
            "visit_reminder" => self.template_visit_reminder.as_deref(),
            "order_request" | "order_request_abnormal" | "order_request_urgent" => {
                self.template_order_request.as_deref()
            }
            "alert_escalated" | "alert_escalated_admin" => self.template_alert.as_deref(),
            _ => None,
        }
    }
}

/// The scheduled jobs (their schedules are in `crate::scheduler`, in the
/// timezone of `CARELOG_TIMEZONE`).
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// `CARELOG_JOBS_ENABLED`, default true: whether the server runs the
    /// scheduler (`carelog jobs run` works either way).
    pub enabled: bool,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings { enabled: true }
    }
}

impl JobSettings {
    fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let enabled = match env.get("CARELOG_JOBS_ENABLED") {
            None => Self::default().enabled,
            Some(v) => parse_bool(&v).ok_or(SettingsError {
                name: "CARELOG_JOBS_ENABLED",
                reason: format!("{v:?} is not true or false"),
            })?,
        };
        Ok(JobSettings { enabled })
    }
}

/// Bounds on what one request may send, and how long its answer is kept.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `CARELOG_MAX_BODY_BYTES`, default 1 MiB for JSON bodies.
    pub max_json_bytes: usize,
    /// `CARELOG_MAX_FORM_BYTES`, default 48 MiB: the whole of one multipart form
    /// (each file is also capped at 16 MiB, and the number of parts and files).
    pub max_form_bytes: usize,
    /// `CARELOG_IDEMPOTENCY_TTL_SECS`, default 24 h: how long a stored response
    /// answers repeats of its `Idempotency-Key`.
    pub idempotency_ttl_secs: i64,
    /// `CARELOG_PROJECTION_MAX_BEHIND`, default 200: how many events the read
    /// models may be behind a command's commit when it answers; past that the
    /// command waits until they are within it, so commands slow to what the
    /// projection pipeline keeps up with (its lag stays bounded). 0: every
    /// command waits until the read models show it. Reads wait for their
    /// caller's writes either way (`crate::fence`).
    pub projection_max_behind: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_json_bytes: 1024 * 1024,
            max_form_bytes: 48 * 1024 * 1024,
            idempotency_ttl_secs: 24 * 3600,
            projection_max_behind: 200,
        }
    }
}

impl Limits {
    fn from_env(env: &Env) -> Result<Self, SettingsError> {
        let d = Self::default();
        Ok(Limits {
            max_json_bytes: env.positive("CARELOG_MAX_BODY_BYTES", d.max_json_bytes as i64)? as usize,
            max_form_bytes: env.positive("CARELOG_MAX_FORM_BYTES", d.max_form_bytes as i64)? as usize,
            idempotency_ttl_secs: env.positive("CARELOG_IDEMPOTENCY_TTL_SECS", d.idempotency_ttl_secs)?,
            projection_max_behind: env.whole("CARELOG_PROJECTION_MAX_BEHIND", d.projection_max_behind)?,
        })
    }
}

/// What the server does before a request reaches a handler (see `docs/security.md`).
#[derive(Debug, Clone)]
pub struct FrontDoor {
    /// `CARELOG_HSTS` (`true`/`false`): send `Strict-Transport-Security`.
    /// Default off in embedded mode (plain HTTP on a laptop), on otherwise.
    pub hsts: bool,
    /// `CARELOG_CORS_ORIGINS` (comma-separated): the origins a browser may call
    /// from. Empty (the default): no CORS headers at all.
    pub cors_origins: Vec<String>,
    /// `CARELOG_RATE_LIMIT_PER_MINUTE`, default 100: requests per client IP and
    /// minute on this instance (0 turns the limit off). `/health` and `/metrics`
    /// are exempt.
    pub rate_limit_per_minute: u32,
    /// `CARELOG_TRUSTED_PROXIES` (comma-separated IPs or CIDRs): peers whose
    /// `X-Forwarded-For` / `X-Real-IP` are believed. Empty (the default): never.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `CARELOG_LOGIN_MAX_FAILURES` (default 5) failed logins for one username
    /// within `CARELOG_LOGIN_WINDOW_SECS` (default 900) throttle it until the
    /// window passes.
    pub login_max_failures: u32,
    pub login_window_secs: i64,
}

impl Default for FrontDoor {
    fn default() -> Self {
        FrontDoor {
            hsts: false,
            cors_origins: Vec::new(),
            rate_limit_per_minute: 100,
            trusted_proxies: Vec::new(),
            login_max_failures: 5,
            login_window_secs: 15 * 60,
        }
    }
}

impl FrontDoor {
    fn from_env(env: &Env, stores: &StoreSettings) -> Result<Self, SettingsError> {
        let d = Self::default();
        let hsts = match env.get("CARELOG_HSTS") {
            None => stores.uses_servers(),
            Some(v) => parse_bool(&v).ok_or(SettingsError {
                name: "CARELOG_HSTS",
                reason: format!("{v:?} is not true or false"),
            })?,
        };
        let cors_origins = env
            .get("CARELOG_CORS_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_string())
                    .filter(|o| !o.is_empty())
                    .collect::<Vec<_>>()
            })
            .unwrap_or(d.cors_origins);
        if let Some(bad) = cors_origins
            .iter()
            .find(|o| !(o.starts_with("https://") || o.starts_with("http://")))
        {
            return Err(SettingsError {
                name: "CARELOG_CORS_ORIGINS",
                reason: format!("{bad:?} is not an origin like https://app.example.com"),
            });
        }
        let trusted_proxies = match env.get("CARELOG_TRUSTED_PROXIES") {
            None => d.trusted_proxies,
            Some(v) => parse_networks(&v).map_err(|reason| SettingsError {
                name: "CARELOG_TRUSTED_PROXIES",
                reason,
            })?,
        };
        Ok(FrontDoor {
            hsts,
            cors_origins,
            trusted_proxies,
            rate_limit_per_minute: env.whole("CARELOG_RATE_LIMIT_PER_MINUTE", d.rate_limit_per_minute)?,
            login_max_failures: env.positive("CARELOG_LOGIN_MAX_FAILURES", d.login_max_failures.into())? as u32,
            login_window_secs: env.positive("CARELOG_LOGIN_WINDOW_SECS", d.login_window_secs)?,
        })
    }
}

/// A comma-separated list of IP addresses or CIDR blocks.
fn parse_networks(raw: &str) -> Result<Vec<ipnet::IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ipnet::IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))
        })
        .collect()
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`).
fn parse_bool(raw: &str) -> Option<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A secret kept in a file of the data dir (mode 0600), generated on first use.
fn kept_secret(path: &Path, generate: impl FnOnce() -> String) -> anyhow::Result<String> {
    if let Ok(s) = std::fs::read_to_string(path) {
        if s.trim().len() >= 32 {
            return Ok(s.trim().to_string());
        }
    }
    let secret = generate();
    std::fs::write(path, &secret).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(secret)
}

/// The variables, read the one way every group reads them: trimmed, empty
/// meaning unset, and a bad value named in the error.
struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    fn secret(&self, name: &str) -> Option<Secret> {
        self.get(name).map(Secret)
    }

    /// A whole number above 0.
    fn positive(&self, name: &'static str, default: i64) -> Result<i64, SettingsError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse::<i64>().ok().filter(|n| *n > 0).ok_or(SettingsError {
                name,
                reason: format!("{v:?} is not a positive integer"),
            }),
        }
    }

    /// A whole number, 0 included.
    fn whole(&self, name: &'static str, default: u32) -> Result<u32, SettingsError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse::<u32>().map_err(|_| SettingsError {
                name,
                reason: format!("{v:?} is not a whole number"),
            }),
        }
    }

    /// A finite number above 0.
    fn positive_number(&self, name: &'static str, default: f64) -> Result<f64, SettingsError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n > 0.0)
                .ok_or(SettingsError {
                    name,
                    reason: format!("{v:?} is not a positive number"),
                }),
        }
    }

    /// `host:port`.
    fn socket(&self, name: &'static str) -> Result<Option<SocketAddr>, SettingsError> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|e| SettingsError {
                    name,
                    reason: format!("{e} (expected host:port)"),
                })
            })
            .transpose()
    }
}

impl Settings {
    /// Reads the process environment (after the optional config file).
    pub fn from_env() -> Result<Self, SettingsError> {
        let mut vars: HashMap<String, String> = std::env::vars().collect();
        if let Some(path) = vars.get("CARELOG_CONFIG").cloned() {
            let text = std::fs::read_to_string(&path).map_err(|e| SettingsError {
                name: "CARELOG_CONFIG",
                reason: format!("{path}: {e}"),
            })?;
            for line in text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                if let Some((k, v)) = line.split_once('=') {
                    // The environment wins over the file.
                    vars.entry(k.trim().to_string())
                        .or_insert_with(|| v.trim().trim_matches('"').to_string());
                }
            }
        }
        Self::from_map(&vars)
    }

    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, SettingsError> {
        let env = Env(vars);
        let http = HttpSettings::from_env(&env)?;
        let stores = StoreSettings::from_env(&env)?;
        let tokens = TokenSettings::from_env(&env, &stores)?;
        let privacy = PrivacySettings::from_env(&env)?;
        let field_work = FieldWork::from_env(&env)?;
        let files = FileSettings::from_env(&env, &stores)?;
        let alerts = AlertSettings::from_env(&env)?;
        let front_door = FrontDoor::from_env(&env, &stores)?;
        let limits = Limits::from_env(&env)?;
        let kafka = KafkaSettings::from_env(&env)?;
        let evv = evv_from_env(&env)?;
        let sync = SyncSettings::from_env(&env)?;
        let wechat = WechatSettings::from_env(&env)?;
        let jobs = JobSettings::from_env(&env)?;
        Ok(Settings {
            http,
            stores,
            tokens,
            privacy,
            kafka,
            files,
            alerts,
            field_work,
            limits,
            front_door,
            evv,
            sync,
            wechat,
            jobs,
        })
    }

    /// Today's date in the configured timezone.
    pub fn today(&self) -> chrono::NaiveDate {
        chrono::Utc::now().with_timezone(&self.field_work.timezone).date_naive()
    }

    /// The JWT secret ([`TokenSettings::secret`]).
    pub fn jwt_secret(&self) -> anyhow::Result<Secret> {
        self.tokens.secret(&self.stores.data_dir)
    }

    /// The master key ([`PrivacySettings::master_key`]).
    pub fn master_key(&self) -> anyhow::Result<MasterKey> {
        self.privacy.master_key(&self.stores, &self.tokens)
    }

    /// The relay's configuration, when Kafka is configured ([`KafkaSettings::relay_config`]).
    pub fn relay_config(&self) -> anyhow::Result<Option<RelayConfig>> {
        self.kafka
            .as_ref()
            .map(|k| k.relay_config(|| self.jwt_secret()))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn the_scheduled_jobs_run_unless_turned_off() {
        assert!(Settings::from_map(&map(&[])).unwrap().jobs.enabled);
        let off = Settings::from_map(&map(&[("CARELOG_JOBS_ENABLED", "false")])).unwrap();
        assert!(!off.jobs.enabled);
        let e = Settings::from_map(&map(&[("CARELOG_JOBS_ENABLED", "maybe")])).unwrap_err();
        assert_eq!(e.name, "CARELOG_JOBS_ENABLED");
    }

    #[test]
    fn defaults_are_the_embedded_mode() {
        let s = Settings::from_map(&map(&[])).unwrap();
        assert_eq!(s.http.bind.to_string(), "127.0.0.1:8080");
        assert!(s.stores.event_store_url.is_none() && s.stores.read_store_url.is_none());
        assert_eq!(s.field_work.timezone, chrono_tz::Asia::Shanghai);
    }

    #[test]
    fn a_bad_setting_is_named() {
        let e = Settings::from_map(&map(&[("CARELOG_TIMEZONE", "Mars/Olympus")])).unwrap_err();
        assert_eq!(e.name, "CARELOG_TIMEZONE");
        let e = Settings::from_map(&map(&[("CARELOG_EVENT_STORE_URL", "postgres://x/y")])).unwrap_err();
        assert_eq!(e.name, "CARELOG_JWT_SECRET");
    }

    #[test]
    fn the_amendment_window_is_a_whole_number_of_days() {
        assert_eq!(
            Settings::from_map(&map(&[])).unwrap().field_work.amendment_window_days,
            7
        );
        let s = Settings::from_map(&map(&[("CARELOG_AMENDMENT_WINDOW_DAYS", "30")])).unwrap();
        assert_eq!(s.field_work.amendment_window_days, 30);
        let s = Settings::from_map(&map(&[("CARELOG_AMENDMENT_WINDOW_DAYS", "0")])).unwrap();
        assert_eq!(s.field_work.amendment_window_days, 0);
        for bad in ["-3", "seven", "1.5", "99999999"] {
            let e = Settings::from_map(&map(&[("CARELOG_AMENDMENT_WINDOW_DAYS", bad)])).unwrap_err();
            assert_eq!(e.name, "CARELOG_AMENDMENT_WINDOW_DAYS", "{bad}");
        }
    }

    #[test]
    fn evv_limits_default_to_500_metres_and_15_minutes_and_name_a_bad_value() {
        let s = Settings::from_map(&map(&[])).unwrap();
        assert_eq!((s.evv.radius_m, s.evv.min_minutes), (500.0, 15));
        let s = Settings::from_map(&map(&[
            ("CARELOG_EVV_RADIUS_M", "250.5"),
            ("CARELOG_EVV_MIN_MINUTES", "0"),
        ]))
        .unwrap();
        assert_eq!((s.evv.radius_m, s.evv.min_minutes), (250.5, 0));
        for (name, bad) in [
            ("CARELOG_EVV_RADIUS_M", "-1"),
            ("CARELOG_EVV_RADIUS_M", "NaN"),
            ("CARELOG_EVV_MIN_MINUTES", "-5"),
            ("CARELOG_EVV_MIN_MINUTES", "a day"),
        ] {
            assert_eq!(
                Settings::from_map(&map(&[(name, bad)])).unwrap_err().name,
                name,
                "{bad}"
            );
        }
    }

    #[test]
    fn alert_escalation_waits_are_whole_minutes() {
        let s = Settings::from_map(&map(&[
            ("CARELOG_ALERT_ESCALATE_URGENT_MIN", "1"),
            ("CARELOG_ALERT_ESCALATE_ABNORMAL_MIN", "30"),
            ("CARELOG_ALERT_ESCALATION_TICK_SECS", "1"),
        ]))
        .unwrap();
        let e = s.alerts.escalation;
        assert_eq!((e.urgent_after.num_minutes(), e.abnormal_after.num_minutes()), (1, 30));
        assert_eq!(s.alerts.escalation_tick, std::time::Duration::from_secs(1));
        for name in [
            "CARELOG_ALERT_ESCALATE_URGENT_MIN",
            "CARELOG_ALERT_ESCALATE_ABNORMAL_MIN",
            "CARELOG_ALERT_ESCALATION_TICK_SECS",
        ] {
            for bad in ["0", "-1", "1.5", "soon", "99999999"] {
                if name.ends_with("TICK_SECS") && bad == "99999999" {
                    continue;
                }
                let e = Settings::from_map(&map(&[(name, bad)])).unwrap_err();
                assert_eq!(e.name, name, "{bad}");
            }
        }
    }

    #[test]
    fn the_route_window_defaults_to_an_hour_and_refuses_more_than_a_day() {
        assert_eq!(Settings::from_map(&map(&[])).unwrap().sync.route_window_min, 60);
        let s = Settings::from_map(&map(&[("CARELOG_ROUTE_WINDOW_MIN", "0")])).unwrap();
        assert_eq!(s.sync.route_window_min, 0);
        for bad in ["-1", "an hour", "1441"] {
            let e = Settings::from_map(&map(&[("CARELOG_ROUTE_WINDOW_MIN", bad)])).unwrap_err();
            assert_eq!(e.name, "CARELOG_ROUTE_WINDOW_MIN", "{bad}");
        }
    }

    #[test]
    fn commands_may_run_200_events_ahead_of_the_read_models_unless_told_otherwise() {
        assert_eq!(Settings::from_map(&map(&[])).unwrap().limits.projection_max_behind, 200);
        let s = Settings::from_map(&map(&[("CARELOG_PROJECTION_MAX_BEHIND", "0")])).unwrap();
        assert_eq!(s.limits.projection_max_behind, 0);
        for bad in ["-1", "many", "1.5"] {
            let e = Settings::from_map(&map(&[("CARELOG_PROJECTION_MAX_BEHIND", bad)])).unwrap_err();
            assert_eq!(e.name, "CARELOG_PROJECTION_MAX_BEHIND", "{bad}");
        }
    }

    #[test]
    fn the_front_door_defaults_to_the_contract() {
        let s = Settings::from_map(&map(&[])).unwrap();
        assert_eq!(s.front_door.rate_limit_per_minute, 100);
        assert!(!s.front_door.hsts, "HSTS is off in embedded mode");
        assert!(s.front_door.trusted_proxies.is_empty() && s.front_door.cors_origins.is_empty());
        assert_eq!(
            (s.front_door.login_max_failures, s.front_door.login_window_secs),
            (5, 900)
        );
        assert_eq!(s.limits.idempotency_ttl_secs, 86_400);
        let servers = Settings::from_map(&map(&[
            ("CARELOG_EVENT_STORE_URL", "postgres://x/y"),
            ("CARELOG_JWT_SECRET", &"k".repeat(32)),
        ]))
        .unwrap();
        assert!(servers.front_door.hsts, "HSTS is on with servers");
    }

    #[test]
    fn trusted_proxies_are_addresses_or_blocks() {
        let s = Settings::from_map(&map(&[("CARELOG_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1,::1")])).unwrap();
        assert_eq!(s.front_door.trusted_proxies.len(), 3);
        let e = Settings::from_map(&map(&[("CARELOG_TRUSTED_PROXIES", "10.0.0.0/8,nginx")])).unwrap_err();
        assert_eq!(e.name, "CARELOG_TRUSTED_PROXIES");
        let e = Settings::from_map(&map(&[("CARELOG_CORS_ORIGINS", "app.example.com")])).unwrap_err();
        assert_eq!(e.name, "CARELOG_CORS_ORIGINS");
        let e = Settings::from_map(&map(&[("CARELOG_HSTS", "maybe")])).unwrap_err();
        assert_eq!(e.name, "CARELOG_HSTS");
    }

    #[test]
    fn wechat_is_off_by_default_and_its_secret_never_prints() {
        let s = Settings::from_map(&map(&[])).unwrap();
        assert!(!s.wechat.configured());
        assert_eq!(s.wechat.api_base, "https://api.weixin.qq.com");
        assert_eq!((s.wechat.push_max_attempts, s.wechat.push_retry_secs), (5, 30));
        let s = Settings::from_map(&map(&[
            ("CARELOG_WECHAT_APP_ID", "wx1"),
            ("CARELOG_WECHAT_APP_SECRET", "hunter2"),
            ("CARELOG_WECHAT_API_BASE", "http://127.0.0.1:9/"),
            ("CARELOG_WECHAT_TEMPLATE_ORDER_REQUEST", "T1"),
        ]))
        .unwrap();
        assert!(s.wechat.configured());
        assert_eq!(s.wechat.api_base, "http://127.0.0.1:9");
        assert_eq!(s.wechat.template_for("order_request_urgent"), Some("T1"));
        assert_eq!(s.wechat.template_for("alert_escalated"), None);
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(Settings::from_map(&map(&[("CARELOG_WECHAT_API_BASE", "ftp://x")])).is_err());
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }

    /// The README's configuration table, group by group: every default, and
    /// that every secret stays out of the settings' debug output.
    #[test]
    fn each_group_reads_its_variables_with_the_documented_defaults() {
        let s = Settings::from_map(&map(&[])).unwrap();
        assert_eq!(s.stores.data_dir, PathBuf::from("./data"));
        assert_eq!(s.files.upload_dir, PathBuf::from("./data").join("uploads"));
        assert!(s.files.s3.is_none() && s.kafka.is_none() && s.http.metrics_bind.is_none());
        assert_eq!((s.tokens.access_ttl_secs, s.tokens.refresh_ttl_secs), (7200, 2_592_000));
        assert_eq!(
            (s.limits.max_json_bytes, s.limits.max_form_bytes),
            (1_048_576, 50_331_648)
        );
        let a = &s.alerts.thresholds;
        assert_eq!(
            (a.systolic_high, a.diastolic_high, a.systolic_urgent, a.diastolic_urgent),
            (140, 90, 180, 120)
        );
        assert_eq!((a.spo2_low, a.temperature_high), (90.0, 38.0));
        assert_eq!((a.heart_rate_low, a.heart_rate_high), (50, 120));
        let e = &s.alerts.escalation;
        assert_eq!(
            (e.urgent_after.num_minutes(), e.abnormal_after.num_minutes()),
            (15, 120)
        );
        assert_eq!(s.alerts.escalation_tick, std::time::Duration::from_secs(5));

        let secrets = [
            ("CARELOG_EVENT_STORE_URL", "postgres://carelog:pg-password@db/events"),
            ("CARELOG_READ_STORE_URL", "mysql://carelog:mysql-password@db/read"),
            ("CARELOG_JWT_SECRET", "jwt-secret-jwt-secret-jwt-secret-0"),
            ("CARELOG_MASTER_KEY", &"ab".repeat(32)),
            ("CARELOG_KAFKA_BROKERS", "kafka:9092"),
            ("CARELOG_KAFKA_PII_KEY", "pii-key-value"),
            ("CARELOG_S3_BUCKET", "carelog"),
            ("CARELOG_S3_SECRET_ACCESS_KEY", "s3-secret-value"),
        ];
        let s = Settings::from_map(&map(&secrets)).unwrap();
        let kafka = s.kafka.as_ref().unwrap();
        assert_eq!(
            (kafka.topic_prefix.as_str(), kafka.partitions, kafka.replication),
            ("carelog.", 3, 1)
        );
        assert_eq!(s.files.s3.as_ref().unwrap().bucket, "carelog");
        let printed = format!("{s:?}");
        for secret in [
            "pg-password",
            "mysql-password",
            "jwt-secret",
            &"ab".repeat(32),
            "pii-key",
            "s3-secret",
        ] {
            assert!(!printed.contains(secret), "{secret} printed: {printed}");
        }
    }

    #[test]
    fn the_pii_key_defaults_to_one_derived_from_the_jwt_secret() {
        let vars = map(&[
            ("CARELOG_KAFKA_BROKERS", "kafka:9092"),
            ("CARELOG_JWT_SECRET", &"j".repeat(32)),
        ]);
        let derived = Settings::from_map(&vars).unwrap().relay_config().unwrap().unwrap();
        assert_eq!(derived.pii_key.len(), 32);
        let mut vars = vars;
        vars.insert("CARELOG_KAFKA_PII_KEY".into(), "configured".into());
        let configured = Settings::from_map(&vars).unwrap().relay_config().unwrap().unwrap();
        assert_eq!(configured.pii_key, b"configured");
        // A bad Kafka variable stops start-up even without brokers.
        let e = Settings::from_map(&map(&[("CARELOG_KAFKA_PARTITIONS", "0")])).unwrap_err();
        assert_eq!(e.name, "CARELOG_KAFKA_PARTITIONS");
    }
}
