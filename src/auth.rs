//! Authentication: argon2 password hashes, JWT access and refresh tokens bound
//! to a login session, and the `Principal` extractor every handler uses.
//!
//! Tokens carry the session id. Each request checks the session and the user
//! in the read store, so logout, suspension and password changes take effect
//! on the very next request, not when the token expires.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use chrono::Utc;
use domain::ids::{SessionId, UserId};
use domain::user::Role;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::state::AppState;

/// Argon2 is slow by design (tens of milliseconds of CPU and 19 MiB per
/// hash): it runs on the blocking pool, never on an HTTP worker, and at most
/// this many at once, so logins cannot starve the server. The rest queue.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| tokio::sync::Semaphore::new(hashing_bound()))
}

/// Leave a core to the HTTP workers where there is more than one.
fn hashing_bound() -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    cores.saturating_sub(1).max(1)
}

/// Runs `work` on the blocking pool within the hashing bound.
async fn argon2_bounded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("argon2 slots: {e}")))?;
    tokio::task::spawn_blocking(work).await.map_err(ApiError::internal)
}

fn hash_now(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(anyhow::anyhow!("argon2: {e}")))
}

fn verify_now(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// A new argon2 hash of `password` (off the HTTP workers, bounded).
pub async fn hash_password(password: &str) -> Result<String, ApiError> {
    let password = password.to_string();
    argon2_bounded(move || hash_now(&password)).await?
}

/// Whether `password` matches `hash` (off the HTTP workers, bounded).
pub async fn verify_password(password: &str, hash: &str) -> Result<bool, ApiError> {
    let (password, hash) = (password.to_string(), hash.to_string());
    argon2_bounded(move || verify_now(&password, &hash)).await
}

/// Spends the time of a real check when the username does not exist.
pub async fn verify_against_dummy(password: &str) -> Result<(), ApiError> {
    let password = password.to_string();
    argon2_bounded(move || {
        verify_now(&password, dummy_hash());
    })
    .await
}

/// A hash to verify against when the username does not exist, so that the
/// response time does not reveal which usernames exist.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_now("carelog-dummy-password").unwrap_or_default())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub sid: String,
    pub role: String,
    pub typ: TokenKind,
    pub iat: i64,
    pub exp: i64,
}

#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    access_ttl: i64,
    refresh_ttl: i64,
}

impl JwtKeys {
    pub fn new(secret: &str, access_ttl: i64, refresh_ttl: i64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            access_ttl,
            refresh_ttl,
        }
    }

    pub fn refresh_ttl(&self) -> i64 {
        self.refresh_ttl
    }

    pub fn issue(&self, user: UserId, session: SessionId, role: Role, kind: TokenKind) -> Result<String, ApiError> {
        let now = Utc::now().timestamp();
        let ttl = match kind {
            TokenKind::Access => self.access_ttl,
            TokenKind::Refresh => self.refresh_ttl,
        };
        let claims = Claims {
            sub: user.to_string(),
            sid: session.to_string(),
            role: role.as_str().into(),
            typ: kind,
            iat: now,
            exp: now + ttl,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(ApiError::internal)
    }

    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        let claims = decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| ApiError::Unauthorized)?
            .claims;
        if claims.typ != kind {
            return Err(ApiError::Unauthorized);
        }
        Ok(claims)
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: UserId,
    pub role: Role,
    pub session_id: SessionId,
}

impl Principal {
    /// Refuses callers whose role is not listed (403).
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
    pub fn is(&self, role: Role) -> bool {
        self.role == role
    }
}

fn bearer(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// Verifies a token of `kind` and checks its session and user are still good.
pub async fn authenticate(state: &AppState, req: &HttpRequest, kind: TokenKind) -> Result<Principal, ApiError> {
    let token = bearer(req).ok_or(ApiError::Unauthorized)?;
    let claims = state.jwt.verify(token, kind)?;
    let session = state
        .read
        .session_state(&claims.sid)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let now = projections::store::instant(Utc::now());
    if session.revoked || session.user_status != "active" || session.user_id != claims.sub || session.expires_at < now {
        return Err(ApiError::Unauthorized);
    }
    let principal = Principal {
        user_id: claims.sub.parse().map_err(|_| ApiError::Unauthorized)?,
        role: Role::parse(&session.role).map_err(|_| ApiError::Unauthorized)?,
        session_id: claims.sid.parse().map_err(|_| ApiError::Unauthorized)?,
    };
    if principal.role == Role::Auditor && !auditor_may(req.method(), req.path()) {
        return Err(ApiError::Forbidden);
    }
    Ok(principal)
}

/// Auditors read the audit endpoints (and the staff directory, to put names
/// on actor ids) and manage their own session; nothing else, whatever a
/// handler's own role list says.
fn auditor_may(method: &actix_web::http::Method, path: &str) -> bool {
    let path = path.trim_end_matches('/');
    if path.starts_with("/api/v1/auth/") {
        return true;
    }
    method == actix_web::http::Method::GET
        && (path.starts_with("/api/v1/audit/") || path == "/api/v1/users" || path.starts_with("/api/v1/users/"))
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            // Already checked for this request (the idempotency middleware does).
            if let Some(p) = req.extensions().get::<Principal>().cloned() {
                return Ok(p);
            }
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("app state missing")))?;
            authenticate(state, &req, TokenKind::Access).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_only_against_their_hash() {
        let h = hash_password("s3cret-pass").await.unwrap();
        assert!(verify_password("s3cret-pass", &h).await.unwrap());
        assert!(!verify_password("other", &h).await.unwrap());
        assert!(!verify_password("s3cret-pass", "not-a-hash").await.unwrap());
    }

    #[tokio::test]
    async fn hashing_runs_off_the_calling_thread_and_within_its_bound() {
        let caller = std::thread::current().id();
        let on = argon2_bounded(|| std::thread::current().id()).await.unwrap();
        assert_ne!(on, caller, "argon2 ran on the request's thread");
        let bound = hashing_bound();
        assert!(bound >= 1);
        // While every slot is taken, a hash waits instead of running.
        let held = hashing_slots().acquire_many(bound as u32).await.unwrap();
        let waiting = tokio::spawn(hash_password("queued-pass1"));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "a hash ran beyond the bound");
        drop(held);
        assert!(waiting.await.unwrap().is_ok());
    }

    #[test]
    fn auditors_only_read_the_audit_trail() {
        use actix_web::http::Method;
        assert!(auditor_may(&Method::GET, "/api/v1/audit/events"));
        assert!(auditor_may(&Method::GET, "/api/v1/users/abc"));
        assert!(auditor_may(&Method::POST, "/api/v1/auth/logout"));
        assert!(!auditor_may(&Method::POST, "/api/v1/audit/events"));
        assert!(!auditor_may(&Method::POST, "/api/v1/families"));
        assert!(!auditor_may(&Method::GET, "/api/v1/patients/abc"));
        assert!(!auditor_may(&Method::PATCH, "/api/v1/users/abc/status"));
    }

    #[test]
    fn a_refresh_token_is_not_an_access_token() {
        let keys = JwtKeys::new(&"k".repeat(32), 60, 600);
        let t = keys
            .issue(UserId::new(), SessionId::new(), Role::Admin, TokenKind::Refresh)
            .unwrap();
        assert!(keys.verify(&t, TokenKind::Refresh).is_ok());
        assert!(keys.verify(&t, TokenKind::Access).is_err());
    }
}
