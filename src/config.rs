//! Typed settings, read once from the environment (`CARELOG_*`), optionally
//! completed by a `KEY=VALUE` file named by `CARELOG_CONFIG`. A bad value stops
//! start-up with one line naming the setting.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use chrono_tz::Tz;

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

#[derive(Debug, Clone)]
pub struct Settings {
    /// `CARELOG_BIND`, default `127.0.0.1:8080`.
    pub bind: SocketAddr,
    /// `CARELOG_DATA_DIR`, default `./data`: embedded databases, generated secret, uploads.
    pub data_dir: PathBuf,
    /// `CARELOG_EVENT_STORE_URL` (`postgres://…`); unset = SQLite under the data dir.
    pub event_store_url: Option<Secret>,
    /// `CARELOG_READ_STORE_URL` (`mysql://…`); unset = SQLite under the data dir.
    pub read_store_url: Option<Secret>,
    /// `CARELOG_KAFKA_BROKERS`; unset = no publishing.
    pub kafka_brokers: Option<String>,
    /// `CARELOG_KAFKA_TOPIC_PREFIX`, default `carelog.`: topics are `<prefix><aggregate_type>`.
    pub kafka_topic_prefix: String,
    /// `CARELOG_KAFKA_PII_KEY`: key of the hashes of identifiers on Kafka
    /// (default: derived from the JWT secret).
    pub kafka_pii_key: Option<Secret>,
    /// `CARELOG_KAFKA_PARTITIONS` (default 3) and `CARELOG_KAFKA_REPLICATION` (default 1):
    /// for the topics the relay creates.
    pub kafka_partitions: i32,
    pub kafka_replication: i32,
    /// `CARELOG_JWT_SECRET`; embedded mode generates one and keeps it in the data dir.
    pub jwt_secret: Option<Secret>,
    /// `CARELOG_MASTER_KEY` (64 hex digits): wraps the data subjects' keys
    /// (crypto-shredding). Embedded mode generates one in the data dir; with
    /// PostgreSQL and no key set, one is derived from the JWT secret (with a
    /// warning: set a separate key in production).
    pub master_key: Option<Secret>,
    /// `CARELOG_TIMEZONE`, default `Asia/Shanghai`: what "today" means.
    pub timezone: Tz,
    /// `CARELOG_UPLOAD_DIR`, default `<data dir>/uploads`.
    pub upload_dir: PathBuf,
    /// `CARELOG_ACCESS_TOKEN_TTL_SECS` (default 2 h) and `CARELOG_REFRESH_TOKEN_TTL_SECS` (30 d).
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    /// `CARELOG_MAX_BODY_BYTES`, default 1 MiB for JSON bodies.
    pub max_json_bytes: usize,
    /// `CARELOG_S3_BUCKET` (+ `_ENDPOINT`, `_REGION`, `_ACCESS_KEY_ID`, `_SECRET_ACCESS_KEY`,
    /// `_ALLOW_HTTP`): files go to S3-compatible storage instead of the upload dir.
    pub s3: Option<crate::files::S3Settings>,
    /// `CARELOG_ALERT_*`: vital-sign thresholds that raise an order request by themselves.
    pub alerts: domain::vitals::AlertThresholds,
    /// `CARELOG_AMENDMENT_WINDOW_DAYS`, default 7: how long a recorder may amend a
    /// health record after writing it (or after an admin unlocked it).
    pub amendment_window_days: u32,
    /// `CARELOG_MAX_FORM_BYTES`, default 48 MiB: the whole of one multipart form
    /// (each file is also capped at 16 MiB, and the number of parts and files).
    pub max_form_bytes: usize,
    /// `CARELOG_IDEMPOTENCY_TTL_SECS`, default 24 h: how long a stored response
    /// answers repeats of its `Idempotency-Key`.
    pub idempotency_ttl_secs: i64,
    /// The front door: headers, CORS, rate limits, trusted proxies, login throttling.
    pub front_door: FrontDoor,
    /// `CARELOG_METRICS_BIND`: a separate listener for `/metrics` (no token
    /// there; keep it private). Unset: `/metrics` on the API listener, admins only.
    pub metrics_bind: Option<SocketAddr>,
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

#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct SettingsError {
    pub name: &'static str,
    pub reason: String,
}

impl Settings {
    /// Reads the process environment (after the optional config file).
    pub fn from_env() -> Result<Self, SettingsError> {
        let mut vars: std::collections::HashMap<String, String> = std::env::vars().collect();
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

    pub fn from_map(vars: &std::collections::HashMap<String, String>) -> Result<Self, SettingsError> {
        let get = |k: &str| vars.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let bind = get("CARELOG_BIND")
            .unwrap_or_else(|| "127.0.0.1:8080".into())
            .parse()
            .map_err(|e| SettingsError {
                name: "CARELOG_BIND",
                reason: format!("{e} (expected host:port)"),
            })?;
        let data_dir = PathBuf::from(get("CARELOG_DATA_DIR").unwrap_or_else(|| "./data".into()));
        let event_store_url = get("CARELOG_EVENT_STORE_URL");
        if let Some(u) = &event_store_url {
            if !(u.starts_with("postgres://") || u.starts_with("postgresql://")) {
                return Err(SettingsError {
                    name: "CARELOG_EVENT_STORE_URL",
                    reason: "must start with postgres://".into(),
                });
            }
        }
        let read_store_url = get("CARELOG_READ_STORE_URL");
        if let Some(u) = &read_store_url {
            if !(u.starts_with("mysql://") || u.starts_with("mariadb://") || u.starts_with("sqlite:")) {
                return Err(SettingsError {
                    name: "CARELOG_READ_STORE_URL",
                    reason: "must start with mysql://".into(),
                });
            }
        }
        let jwt_secret = get("CARELOG_JWT_SECRET");
        if let Some(s) = &jwt_secret {
            if s.len() < 32 {
                return Err(SettingsError {
                    name: "CARELOG_JWT_SECRET",
                    reason: "must be at least 32 characters".into(),
                });
            }
        }
        if jwt_secret.is_none() && event_store_url.is_some() {
            // Several servers share a database: they must share the secret, so it cannot be generated.
            return Err(SettingsError {
                name: "CARELOG_JWT_SECRET",
                reason: "required when CARELOG_EVENT_STORE_URL is set".into(),
            });
        }
        let master_key = get("CARELOG_MASTER_KEY");
        if let Some(k) = &master_key {
            crate::privacy::MasterKey::parse(k).map_err(|reason| SettingsError {
                name: "CARELOG_MASTER_KEY",
                reason,
            })?;
        }
        let timezone = get("CARELOG_TIMEZONE")
            .unwrap_or_else(|| "Asia/Shanghai".into())
            .parse::<Tz>()
            .map_err(|e| SettingsError {
                name: "CARELOG_TIMEZONE",
                reason: e.to_string(),
            })?;
        let upload_dir = get("CARELOG_UPLOAD_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("uploads"));
        let int = |name: &'static str, default: i64| -> Result<i64, SettingsError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v.parse::<i64>().ok().filter(|n| *n > 0).ok_or(SettingsError {
                    name,
                    reason: format!("{v:?} is not a positive integer"),
                }),
            }
        };
        let s3 = get("CARELOG_S3_BUCKET").map(|bucket| crate::files::S3Settings {
            bucket,
            endpoint: get("CARELOG_S3_ENDPOINT"),
            region: get("CARELOG_S3_REGION"),
            access_key_id: get("CARELOG_S3_ACCESS_KEY_ID"),
            secret_access_key: get("CARELOG_S3_SECRET_ACCESS_KEY"),
            allow_http: get("CARELOG_S3_ALLOW_HTTP").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
        });
        let mut alerts = domain::vitals::AlertThresholds::default();
        let num = |name: &'static str, current: f64| -> Result<f64, SettingsError> {
            match get(name) {
                None => Ok(current),
                Some(v) => v
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite() && *n > 0.0)
                    .ok_or(SettingsError {
                        name,
                        reason: format!("{v:?} is not a positive number"),
                    }),
            }
        };
        alerts.systolic_high = num("CARELOG_ALERT_SYSTOLIC_HIGH", alerts.systolic_high.into())? as u16;
        alerts.diastolic_high = num("CARELOG_ALERT_DIASTOLIC_HIGH", alerts.diastolic_high.into())? as u16;
        alerts.systolic_urgent = num("CARELOG_ALERT_SYSTOLIC_URGENT", alerts.systolic_urgent.into())? as u16;
        alerts.diastolic_urgent = num("CARELOG_ALERT_DIASTOLIC_URGENT", alerts.diastolic_urgent.into())? as u16;
        alerts.spo2_low = num("CARELOG_ALERT_SPO2_LOW", alerts.spo2_low)?;
        alerts.temperature_high = num("CARELOG_ALERT_TEMPERATURE_HIGH", alerts.temperature_high)?;
        alerts.heart_rate_low = num("CARELOG_ALERT_HEART_RATE_LOW", alerts.heart_rate_low.into())? as u16;
        alerts.heart_rate_high = num("CARELOG_ALERT_HEART_RATE_HIGH", alerts.heart_rate_high.into())? as u16;
        // 0 closes records at once (every correction then needs an admin unlock);
        // a century is more than any record needs, and keeps date arithmetic in range.
        let amendment_window_days = match get("CARELOG_AMENDMENT_WINDOW_DAYS") {
            None => 7,
            Some(v) => v.parse::<u32>().ok().filter(|d| *d <= 36_500).ok_or(SettingsError {
                name: "CARELOG_AMENDMENT_WINDOW_DAYS",
                reason: format!("{v:?} is not a number of days from 0 to 36500"),
            })?,
        };
        let non_negative = |name: &'static str, default: u32| -> Result<u32, SettingsError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v.parse::<u32>().map_err(|_| SettingsError {
                    name,
                    reason: format!("{v:?} is not a whole number"),
                }),
            }
        };
        let hsts = match get("CARELOG_HSTS") {
            None => event_store_url.is_some() || read_store_url.is_some(),
            Some(v) => parse_bool(&v).ok_or(SettingsError {
                name: "CARELOG_HSTS",
                reason: format!("{v:?} is not true or false"),
            })?,
        };
        let cors_origins = get("CARELOG_CORS_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().trim_end_matches('/').to_string())
                    .filter(|o| !o.is_empty())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        if let Some(bad) = cors_origins
            .iter()
            .find(|o| !(o.starts_with("https://") || o.starts_with("http://")))
        {
            return Err(SettingsError {
                name: "CARELOG_CORS_ORIGINS",
                reason: format!("{bad:?} is not an origin like https://app.example.com"),
            });
        }
        let trusted_proxies = match get("CARELOG_TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(v) => parse_networks(&v).map_err(|reason| SettingsError {
                name: "CARELOG_TRUSTED_PROXIES",
                reason,
            })?,
        };
        let front_door = FrontDoor {
            hsts,
            cors_origins,
            trusted_proxies,
            rate_limit_per_minute: non_negative("CARELOG_RATE_LIMIT_PER_MINUTE", 100)?,
            login_max_failures: int("CARELOG_LOGIN_MAX_FAILURES", 5)? as u32,
            login_window_secs: int("CARELOG_LOGIN_WINDOW_SECS", 15 * 60)?,
        };
        let metrics_bind = match get("CARELOG_METRICS_BIND") {
            None => None,
            Some(v) => Some(v.parse().map_err(|e| SettingsError {
                name: "CARELOG_METRICS_BIND",
                reason: format!("{e} (expected host:port)"),
            })?),
        };
        Ok(Settings {
            front_door,
            metrics_bind,
            max_form_bytes: int("CARELOG_MAX_FORM_BYTES", 48 * 1024 * 1024)? as usize,
            idempotency_ttl_secs: int("CARELOG_IDEMPOTENCY_TTL_SECS", 24 * 3600)?,
            s3,
            alerts,
            amendment_window_days,
            bind,
            data_dir,
            event_store_url: event_store_url.map(Secret),
            read_store_url: read_store_url.map(Secret),
            kafka_brokers: get("CARELOG_KAFKA_BROKERS"),
            kafka_topic_prefix: get("CARELOG_KAFKA_TOPIC_PREFIX").unwrap_or_else(|| "carelog.".into()),
            kafka_pii_key: get("CARELOG_KAFKA_PII_KEY").map(Secret),
            kafka_partitions: int("CARELOG_KAFKA_PARTITIONS", 3)? as i32,
            kafka_replication: int("CARELOG_KAFKA_REPLICATION", 1)? as i32,
            jwt_secret: jwt_secret.map(Secret),
            master_key: master_key.map(Secret),
            timezone,
            upload_dir,
            access_ttl_secs: int("CARELOG_ACCESS_TOKEN_TTL_SECS", 2 * 3600)?,
            refresh_ttl_secs: int("CARELOG_REFRESH_TOKEN_TTL_SECS", 30 * 24 * 3600)?,
            max_json_bytes: int("CARELOG_MAX_BODY_BYTES", 1024 * 1024)? as usize,
        })
    }

    /// Today's date in the configured timezone.
    pub fn today(&self) -> chrono::NaiveDate {
        chrono::Utc::now().with_timezone(&self.timezone).date_naive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> std::collections::HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_are_the_embedded_mode() {
        let s = Settings::from_map(&map(&[])).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert!(s.event_store_url.is_none() && s.read_store_url.is_none());
        assert_eq!(s.timezone, chrono_tz::Asia::Shanghai);
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
        assert_eq!(Settings::from_map(&map(&[])).unwrap().amendment_window_days, 7);
        let s = Settings::from_map(&map(&[("CARELOG_AMENDMENT_WINDOW_DAYS", "30")])).unwrap();
        assert_eq!(s.amendment_window_days, 30);
        let s = Settings::from_map(&map(&[("CARELOG_AMENDMENT_WINDOW_DAYS", "0")])).unwrap();
        assert_eq!(s.amendment_window_days, 0);
        for bad in ["-3", "seven", "1.5", "99999999"] {
            let e = Settings::from_map(&map(&[("CARELOG_AMENDMENT_WINDOW_DAYS", bad)])).unwrap_err();
            assert_eq!(e.name, "CARELOG_AMENDMENT_WINDOW_DAYS", "{bad}");
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
        assert_eq!(s.idempotency_ttl_secs, 86_400);
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
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
