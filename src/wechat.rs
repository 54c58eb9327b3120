//! The WeChat API client: the three calls of the official protocol carelog
//! needs, and nothing else.
//!
//! - `GET {base}/sns/jscode2session?appid&secret&js_code&grant_type=authorization_code`
//!   → `{openid, session_key, unionid?, errcode?, errmsg?}` (mini-program login);
//! - `GET {base}/cgi-bin/token?grant_type=client_credential&appid&secret`
//!   → `{access_token, expires_in}`, cached until a minute before it expires and
//!   fetched again when WeChat says it is invalid or expired (errcode 40001, 42001);
//! - `POST {base}/cgi-bin/message/subscribe/send?access_token=`
//!   `{touser, template_id, page?, data: {key: {value}}}` → `{errcode, errmsg}`.
//!
//! Never logged: the app secret, the session key, access tokens, full openids
//! (only [`mask`]ed). Every call has the configured timeout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hmac::Mac;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::config::{Secret, WechatSettings};

/// What code2session tells about a login code.
pub struct WechatSession {
    pub openid: String,
    /// Kept only to be dropped: carelog decrypts nothing with it.
    pub session_key: Secret,
    pub unionid: Option<String>,
}

impl std::fmt::Debug for WechatSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatSession")
            .field("openid", &mask(&self.openid))
            .finish_non_exhaustive()
    }
}

/// Why a call to WeChat did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum WechatError {
    /// The login code is wrong, used or expired (40029, 40163, 40226…).
    #[error("the login code is invalid (errcode {0})")]
    InvalidCode(i64),
    /// The user refused (or has used up) the subscription to this template (43101).
    #[error("the user has not subscribed to this template")]
    NotSubscribed,
    /// WeChat answered with another error code.
    #[error("WeChat refused: errcode {errcode}: {errmsg}")]
    Refused { errcode: i64, errmsg: String },
    /// No usable answer: network, timeout, HTTP status, body.
    #[error("WeChat unreachable: {0}")]
    Unreachable(String),
}

/// Error codes of code2session that mean "this code will never work".
const INVALID_CODE: &[i64] = &[40029, 40163, 40226, 40125];
/// The access token is invalid or expired: fetch another and try again once.
const TOKEN_EXPIRED: &[i64] = &[40001, 42001, 40014];
/// The user has not (or no longer) subscribed.
const NOT_SUBSCRIBED: i64 = 43101;

/// The client: one per process, shared by the login use cases and the push follower.
pub struct WechatClient {
    http: reqwest::Client,
    base: String,
    app_id: String,
    secret: Secret,
    /// The cached access token and when to stop using it.
    token: Mutex<Option<(Secret, Instant)>>,
    /// Keys [`openid_hash`].
    hash_key: [u8; 32],
}

#[derive(Deserialize)]
struct SessionAnswer {
    openid: Option<String>,
    session_key: Option<String>,
    unionid: Option<String>,
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<i64>,
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

#[derive(Deserialize)]
struct SendAnswer {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

/// One subscribe message.
#[derive(Debug, Clone, Serialize)]
pub struct SubscribeMessage {
    pub touser: String,
    pub template_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    pub data: BTreeMap<String, Value>,
}

/// `{value}` of one template key.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Value {
    pub value: String,
}

impl WechatClient {
    /// The client of configured settings (`hash_key` keys the openid hashes);
    /// `None` when WeChat is off.
    pub fn new(settings: &WechatSettings, hash_key: [u8; 32]) -> anyhow::Result<Option<Self>> {
        let (Some(app_id), Some(secret)) = (&settings.app_id, &settings.app_secret) else {
            return Ok(None);
        };
        let timeout = Duration::from_secs(settings.timeout_secs.max(1) as u64);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()?;
        Ok(Some(WechatClient {
            http,
            base: settings.api_base.clone(),
            app_id: app_id.clone(),
            secret: secret.clone(),
            token: Mutex::new(None),
            hash_key,
        }))
    }

    /// The keyed hash of an openid ([`openid_hash`] under this server's key).
    pub fn hash(&self, openid: &str) -> String {
        openid_hash(&self.hash_key, openid)
    }

    async fn get<T: for<'de> Deserialize<'de>>(&self, path: &str, query: &[(&str, &str)]) -> Result<T, WechatError> {
        let answer = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .send()
            .await
            .map_err(unreachable)?;
        read(answer).await
    }

    /// Exchanges a mini-program login code for the user's openid.
    pub async fn code2session(&self, code: &str) -> Result<WechatSession, WechatError> {
        let a: SessionAnswer = self
            .get(
                "/sns/jscode2session",
                &[
                    ("appid", &self.app_id),
                    ("secret", self.secret.expose()),
                    ("js_code", code),
                    ("grant_type", "authorization_code"),
                ],
            )
            .await?;
        match (a.errcode, a.openid) {
            (0, Some(openid)) if !openid.is_empty() => Ok(WechatSession {
                openid,
                session_key: Secret::new(a.session_key.unwrap_or_default()),
                unionid: a.unionid,
            }),
            (c, _) if INVALID_CODE.contains(&c) => Err(WechatError::InvalidCode(c)),
            (0, _) => Err(WechatError::Unreachable(
                "code2session answered without an openid".into(),
            )),
            (errcode, _) => Err(WechatError::Refused {
                errcode,
                errmsg: a.errmsg,
            }),
        }
    }

    /// The access token, from the cache while it is fresh.
    async fn access_token(&self) -> Result<Secret, WechatError> {
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = &*cached {
            if Instant::now() < *until {
                return Ok(token.clone());
            }
        }
        let a: TokenAnswer = self
            .get(
                "/cgi-bin/token",
                &[
                    ("grant_type", "client_credential"),
                    ("appid", &self.app_id),
                    ("secret", self.secret.expose()),
                ],
            )
            .await?;
        let Some(token) = a.access_token.filter(|t| a.errcode == 0 && !t.is_empty()) else {
            return Err(WechatError::Refused {
                errcode: a.errcode,
                errmsg: a.errmsg,
            });
        };
        // Stop a minute early (or at half the life of a short-lived token).
        let life = a.expires_in.unwrap_or(7200).max(2);
        let margin = 60.min(life / 2);
        let token = Secret::new(token);
        *cached = Some((
            token.clone(),
            Instant::now() + Duration::from_secs((life - margin) as u64),
        ));
        Ok(token)
    }

    async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// Sends one subscribe message; `Ok` when WeChat accepted it.
    pub async fn send(&self, message: &SubscribeMessage) -> Result<(), WechatError> {
        for first in [true, false] {
            let token = self.access_token().await?;
            let answer = self
                .http
                .post(format!("{}/cgi-bin/message/subscribe/send", self.base))
                .query(&[("access_token", token.expose())])
                .json(message)
                .send()
                .await
                .map_err(unreachable)?;
            let a: SendAnswer = read(answer).await?;
            match a.errcode {
                0 => return Ok(()),
                NOT_SUBSCRIBED => return Err(WechatError::NotSubscribed),
                c if first && TOKEN_EXPIRED.contains(&c) => self.forget_token().await,
                errcode => {
                    return Err(WechatError::Refused {
                        errcode,
                        errmsg: a.errmsg,
                    })
                }
            }
        }
        Err(WechatError::Unreachable("the access token was refused twice".into()))
    }
}

fn unreachable(e: reqwest::Error) -> WechatError {
    // Without the URL: its query holds the secret or the access token.
    WechatError::Unreachable(e.without_url().to_string())
}

async fn read<T: for<'de> Deserialize<'de>>(answer: reqwest::Response) -> Result<T, WechatError> {
    let status = answer.status();
    if !status.is_success() {
        return Err(WechatError::Unreachable(format!("HTTP {status}")));
    }
    // WeChat answers JSON as text/plain at times: read the bytes, not the header.
    let bytes = answer.bytes().await.map_err(unreachable)?;
    serde_json::from_slice(&bytes).map_err(|e| WechatError::Unreachable(format!("unreadable answer: {e}")))
}

/// An openid as logs may show it: its first four characters.
pub fn mask(openid: &str) -> String {
    let head: String = openid.chars().take(4).collect();
    format!("{head}…")
}

/// The keyed hash an openid is looked up and claimed by (HMAC-SHA256 under a
/// key derived from the server's secret), so no table lists openids in clear.
pub fn openid_hash(key: &[u8; 32], openid: &str) -> String {
    let mut mac = crate::privacy::hmac_sha256(&key[..]);
    mac.update(openid.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openids_are_masked_and_hashed_never_shown() {
        assert_eq!(mask("oAbCdEfGh"), "oAbC…");
        let (a, b) = (openid_hash(&[1; 32], "o1"), openid_hash(&[2; 32], "o1"));
        assert_ne!(a, b, "keyed");
        assert_eq!(a.len(), 64);
        assert!(!a.contains("o1"));
    }

    #[test]
    fn a_message_is_serialized_as_the_protocol_names_it() {
        let m = SubscribeMessage {
            touser: "o1".into(),
            template_id: "T".into(),
            page: None,
            data: BTreeMap::from([("thing1".to_string(), Value { value: "x".into() })]),
        };
        assert_eq!(
            serde_json::to_value(m).unwrap(),
            serde_json::json!({"touser": "o1", "template_id": "T", "data": {"thing1": {"value": "x"}}})
        );
    }
}
