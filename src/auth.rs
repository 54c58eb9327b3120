//! Authentication: argon2 password hashes, JWT access and refresh tokens bound
//! to a login session, and the `Principal` every handler acts as (extracted
//! from the request by `crate::api::extract`).
//!
//! Tokens carry the session id. Each request checks the session and the user
//! in the read store, so logout, suspension and password changes take effect
//! on the very next request, not when the token expires.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::Argon2;
use chrono::Utc;
use domain::ids::{SessionId, UserId};
use domain::user::Role;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::app::error::AppError;

/// Argon2 is slow by design (tens of milliseconds of CPU and 19 MiB per
/// hash). It runs on a few dedicated threads, never on an HTTP worker: at
/// most [`hashing_bound`] hashes at once, so logins cannot starve the server,
/// and always on the same threads, so the memory allocator reuses the same
/// 19 MiB each time instead of keeping a copy in the arena of every blocking
/// thread that ever hashed (which is how 6 concurrent logins grew the server
/// by 200 MB). Up to [`HASH_QUEUE`] hashes wait their turn; past that the
/// server is overloaded and says so (503).
type HashJob = Box<dyn FnOnce() + Send>;

/// Hashes that may wait for a hashing thread.
const HASH_QUEUE: usize = 1024;

fn hashing_threads() -> Option<&'static std::sync::mpsc::SyncSender<HashJob>> {
    static JOBS: std::sync::OnceLock<Option<std::sync::mpsc::SyncSender<HashJob>>> = std::sync::OnceLock::new();
    JOBS.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<HashJob>(HASH_QUEUE);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let mut started = 0;
        for n in 0..hashing_bound() {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || loop {
                    // Take the next job, then let go of the queue while it runs.
                    let job = rx
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .recv_timeout(KEEP_WORKING_MEMORY);
                    match job {
                        Ok(job) => job(),
                        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => release_working_memory(),
                        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "cannot start a password hashing thread"),
            }
        }
        (started > 0).then_some(tx)
    })
    .as_ref()
}

/// Leave a core to the HTTP workers where there is more than one.
fn hashing_bound() -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    cores.saturating_sub(1).max(1)
}

/// Runs `work` on a hashing thread and waits for it without blocking the caller.
async fn argon2_bounded<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
    let threads = hashing_threads().ok_or(AppError::Unavailable)?;
    let (done, result) = tokio::sync::oneshot::channel();
    let job: HashJob = Box::new(move || {
        // The waiter may have gone (client disconnected): nothing to tell.
        let _ = done.send(work());
    });
    threads.try_send(job).map_err(|e| match e {
        std::sync::mpsc::TrySendError::Full(_) => AppError::Unavailable,
        std::sync::mpsc::TrySendError::Disconnected(_) => {
            AppError::internal(anyhow::anyhow!("the password hashing threads have stopped"))
        }
    })?;
    result
        .await
        .map_err(|_| AppError::internal(anyhow::anyhow!("a password hash was dropped")))
}

thread_local! {
    /// The argon2 working memory of this hashing thread, kept between hashes
    /// (19 MiB per thread, not allocated and faulted in again for each login
    /// of a morning's burst) until the thread has been idle for
    /// [`KEEP_WORKING_MEMORY`].
    static BLOCKS: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// How long an idle hashing thread keeps its working memory. The threads
/// share one queue and wait for it in turn, so each lets go of its memory
/// within (threads x this) of the last hash.
const KEEP_WORKING_MEMORY: std::time::Duration = std::time::Duration::from_secs(5);

/// Gives this thread's argon2 working memory back to the allocator.
fn release_working_memory() {
    BLOCKS.with(|blocks| {
        if let Ok(mut blocks) = blocks.try_borrow_mut() {
            *blocks = Vec::new();
        }
    });
}

/// Argon2 into `out` with this thread's reused working memory.
fn argon2_into(argon: &Argon2, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), argon2::Error> {
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        let needed = argon.params().block_count();
        if blocks.len() < needed {
            blocks.resize(needed, argon2::Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut blocks[..needed])
    })
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of `password`,
/// with argon2's default (OWASP) parameters and a random salt.
fn hash_now(password: &str) -> Result<String, AppError> {
    let failed = |e: &dyn std::fmt::Display| AppError::internal(anyhow::anyhow!("argon2: {e}"));
    let argon = Argon2::default();
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| failed(&e))?;
    let mut out = [0u8; argon2::Params::DEFAULT_OUTPUT_LEN];
    argon2_into(&argon, password.as_bytes(), salt_bytes, &mut out).map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: argon2::Algorithm::default().ident(),
        version: Some(argon2::Version::default().into()),
        params: argon2::password_hash::ParamsString::try_from(argon.params()).map_err(|e| failed(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(argon2::password_hash::Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `hash` (any argon2 variant and
/// parameters it names). The comparison is constant-time (`Output`'s `==`).
fn verify_now(password: &str, hash: &str) -> bool {
    let check = || -> Option<bool> {
        let parsed = PasswordHash::new(hash).ok()?;
        let expected = parsed.hash?;
        let algorithm = argon2::Algorithm::try_from(parsed.algorithm).ok()?;
        let version = match parsed.version {
            Some(v) => argon2::Version::try_from(v).ok()?,
            None => argon2::Version::default(),
        };
        let params = argon2::Params::try_from(&parsed).ok()?;
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
        let mut out = vec![0u8; expected.len()];
        argon2_into(
            &Argon2::new(algorithm, version, params),
            password.as_bytes(),
            salt,
            &mut out,
        )
        .ok()?;
        Some(argon2::password_hash::Output::new(&out).ok()? == expected)
    };
    check().unwrap_or(false)
}

/// A new argon2 hash of `password` (off the HTTP workers, bounded).
pub async fn hash_password(password: &str) -> Result<String, AppError> {
    let password = password.to_string();
    argon2_bounded(move || hash_now(&password)).await?
}

/// Whether `password` matches `hash` (off the HTTP workers, bounded).
pub async fn verify_password(password: &str, hash: &str) -> Result<bool, AppError> {
    let (password, hash) = (password.to_string(), hash.to_string());
    argon2_bounded(move || verify_now(&password, &hash)).await
}

/// Spends the time of a real check when the username does not exist.
pub async fn verify_against_dummy(password: &str) -> Result<(), AppError> {
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

    pub fn issue(&self, user: UserId, session: SessionId, role: Role, kind: TokenKind) -> Result<String, AppError> {
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
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding).map_err(AppError::internal)
    }

    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims, AppError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        let claims = decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| AppError::Unauthorized)?
            .claims;
        if claims.typ != kind {
            return Err(AppError::Unauthorized);
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
    pub fn require(&self, roles: &[Role]) -> Result<(), AppError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
    pub fn is(&self, role: Role) -> bool {
        self.role == role
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_standard_phc_strings_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        // Ours verify with the argon2 crate's own verifier...
        let ours = hash_now("s3cret-pass").unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{ours}");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"s3cret-pass", &parsed).is_ok());
        // ...and the crate's (and every hash stored before) verify with ours.
        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"s3cret-pass", &salt)
            .unwrap()
            .to_string();
        assert!(verify_now("s3cret-pass", &theirs));
        assert!(!verify_now("s3cret-pasS", &theirs));
        let light = Argon2::new(
            argon2::Algorithm::Argon2i,
            argon2::Version::V0x10,
            argon2::Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"x", &salt)
        .unwrap()
        .to_string();
        assert!(verify_now("x", &light), "other variants and parameters");
    }

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
        let name = argon2_bounded(|| std::thread::current().name().map(str::to_string))
            .await
            .unwrap();
        assert!(
            name.is_some_and(|n| n.starts_with("argon2-")),
            "a dedicated hashing thread"
        );
        // While every hashing thread is busy, a hash waits instead of running.
        let bound = hashing_bound();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = std::sync::Arc::new(std::sync::Mutex::new(gate));
        let busy: Vec<_> = (0..bound)
            .map(|_| {
                let gate = gate.clone();
                tokio::spawn(argon2_bounded(move || {
                    let _ = gate.lock().unwrap().recv();
                }))
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let waiting = tokio::spawn(hash_password("queued-pass1"));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "a hash ran beyond the bound");
        for _ in 0..bound {
            release.send(()).unwrap();
        }
        for b in busy {
            b.await.unwrap().unwrap();
        }
        assert!(waiting.await.unwrap().is_ok());
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
