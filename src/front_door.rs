//! The front door: what every request passes before a handler sees it.
//!
//! - **Client IP.** The address recorded in events, the access log, the login
//!   record and the rate limiter is the TCP peer, unless that peer is one of
//!   `CARELOG_TRUSTED_PROXIES`: then the right-most address of
//!   `X-Forwarded-For` that is not itself a trusted proxy (or `X-Real-IP`) is
//!   the client. A client can write any header; only our own proxies' words
//!   count.
//! - **Rate limit.** `CARELOG_RATE_LIMIT_PER_MINUTE` requests per client IP and
//!   minute (GCRA from the `governor` crate: a burst of the whole minute's
//!   allowance, refilled evenly), then 429 `rate_limited` with `Retry-After`.
//!   The limit is kept in memory, per instance: behind a load balancer with N
//!   instances a client gets up to N times the limit (documented in
//!   `docs/security.md`). `/health` and `/metrics` are exempt, so probes and
//!   scrapers are never throttled.
//! - **Security headers** on every response, errors included:
//!   `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
//!   `Referrer-Policy: no-referrer`, HSTS when `CARELOG_HSTS` is on, and
//!   `Cache-Control: no-store` on API answers (they carry patient data and
//!   tokens) unless the handler chose its own.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpMessage, HttpRequest};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;

use crate::config::FrontDoor;

/// The client's address for this request, decided once by [`middleware`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// The client IP of a request as text (`""` when unknown, e.g. in unit tests).
pub fn client_ip(req: &HttpRequest) -> String {
    if let Some(ip) = req.extensions().get::<ClientIp>() {
        return ip.0.to_string();
    }
    // Without the middleware (which knows the trusted proxies), no header is
    // believed: the peer is the client.
    req.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default()
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = match ip {
        // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    trusted.iter().any(|net| net.contains(&ip))
}

/// The client address: the peer, or what trusted proxies say in front of it.
pub fn resolve(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    if !is_trusted(peer, trusted) {
        return Some(peer);
    }
    // Each proxy appends the address it received from: walk from the right,
    // past our own proxies, to the first address none of them is.
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| parse_ip(s.trim()))
        .collect();
    if let Some(client) = forwarded.iter().rev().find(|ip| !is_trusted(**ip, trusted)) {
        return Some(*client);
    }
    if let Some(first) = forwarded.first() {
        // Every hop is ours: the left-most is where the chain began.
        return Some(*first);
    }
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_ip(v.trim()))
        .or(Some(peer))
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `[::1]:80`, `::1`.
fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Ok(sock) = s.parse::<std::net::SocketAddr>() {
        return Some(sock.ip());
    }
    s.trim_start_matches('[').split(']').next().and_then(|v| v.parse().ok())
}

/// The per-IP limiter, shared by every worker of the instance.
#[derive(Clone)]
pub struct RateLimiter {
    inner: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
}

impl RateLimiter {
    /// `per_minute` requests per IP and minute; 0 turns the limit off.
    pub fn new(per_minute: u32) -> Self {
        Self {
            inner: NonZeroU32::new(per_minute).map(|n| Arc::new(DefaultKeyedRateLimiter::keyed(Quota::per_minute(n)))),
        }
    }

    /// `Err(seconds to wait)` when `ip` is over its limit.
    pub fn check(&self, ip: IpAddr) -> Result<(), u64> {
        let Some(limiter) = &self.inner else { return Ok(()) };
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets IPs whose allowance is full again, so the table stays small.
    pub fn start_housekeeping(&self) -> Option<tokio::task::JoinHandle<()>> {
        let limiter = self.inner.clone()?;
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }))
    }
}

/// Paths that are never rate limited: health probes and the metrics scrape.
pub fn exempt(path: &str) -> bool {
    matches!(path, "/health" | "/api/v1/health" | "/metrics" | "/api/v1/metrics")
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &'static str) {
    headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
}

/// The headers every response carries.
pub fn secure_headers(headers: &mut HeaderMap, door: &FrontDoor, api: bool) {
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "no-referrer");
    if door.hsts {
        set(
            headers,
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        );
    }
    if api && !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, "cache-control", "no-store");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let peer: IpAddr = "198.51.100.7".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.9"), ("x-real-ip", "203.0.113.10")]);
        assert_eq!(resolve(Some(peer), &h, &[]), Some(peer));
        assert_eq!(resolve(Some(peer), &h, &nets(&["10.0.0.0/8"])), Some(peer));
    }

    #[test]
    fn a_trusted_proxy_names_the_client_right_to_left() {
        let trusted = nets(&["10.0.0.0/8", "127.0.0.1/32"]);
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        // The client forged the first entry; our proxies appended the rest.
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.5")]);
        assert_eq!(resolve(Some(proxy), &h, &trusted), Some("203.0.113.9".parse().unwrap()));
        let h = headers(&[("x-real-ip", "203.0.113.11")]);
        assert_eq!(
            resolve(Some(proxy), &h, &trusted),
            Some("203.0.113.11".parse().unwrap())
        );
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:4711")]);
        assert_eq!(resolve(Some(proxy), &h, &trusted), Some("2001:db8::1".parse().unwrap()));
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        let h = headers(&[("x-forwarded-for", "203.0.113.12")]);
        assert_eq!(
            resolve(Some(mapped), &h, &trusted),
            Some("203.0.113.12".parse().unwrap())
        );
        // Nothing usable said: the proxy itself.
        assert_eq!(resolve(Some(proxy), &HeaderMap::new(), &trusted), Some(proxy));
    }

    #[test]
    fn the_limiter_refuses_past_the_allowance_and_says_how_long_to_wait() {
        let limiter = RateLimiter::new(3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check(ip).is_ok());
        }
        let wait = limiter.check(ip).unwrap_err();
        assert!((1..=20).contains(&wait), "{wait}");
        assert!(limiter.check("192.0.2.2".parse().unwrap()).is_ok(), "per IP");
        let off = RateLimiter::new(0);
        assert!((0..1000).all(|_| off.check(ip).is_ok()));
    }
}
