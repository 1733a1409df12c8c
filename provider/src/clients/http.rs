//! What the Workbench, SentinelOne and Wiz clients share on the wire: the HTTP transport (the
//! client, its time limits and the one retry policy of a call), the deadline of one call
//! across its retries, transport errors that say their cause, and the rule that a URL
//! carrying a secret is https unless it stays on this machine.
use std::error::Error as _;
use std::time::{Duration, Instant};

use url::{Host, Url};

use super::pause::pause;
use super::retry::backoff;

/// How long one HTTP request, and one call with all its retries, may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// One request: connecting, sending and reading the whole answer.
    pub request: Duration,
    /// One call: every attempt and every wait between them.
    pub total: Duration,
}

impl Default for Limits {
    /// A silent server costs a `terraform plan` about a minute, not the five it once did.
    fn default() -> Self {
        Limits {
            request: Duration::from_secs(30),
            total: Duration::from_secs(60),
        }
    }
}

/// The longest a TCP (and TLS) connect may take, whatever the request limit.
const CONNECT: Duration = Duration::from_secs(10);

/// Time an attempt needs at least to be worth starting.
const MIN_ATTEMPT: Duration = Duration::from_secs(1);

impl Limits {
    /// An HTTP client bound by these limits.
    pub fn client(&self) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .user_agent(format!("terraform-provider-expel/{}", crate::VERSION))
            .connect_timeout(CONNECT.min(self.request))
            .timeout(self.request)
            .build()
    }
}

/// Whether an answer says "not now" rather than "no": throttled (429) or failed on the
/// server's side (5xx). The one status rule of the clients' own retries and of their
/// `Retryable` impls.
pub fn transient(status: u16) -> bool {
    status == 429 || status >= 500
}

/// The longest a client waits on one Retry-After between its own attempts (a longer one is cut
/// to this).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// An answer's Retry-After in seconds (the HTTP-date form is not parsed), uncapped.
pub fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let secs: u64 = resp
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// How one call is retried inside its client: a 429 or 5xx answer, a timeout or a failed
/// connection is sent again after the answer's Retry-After (at most [`MAX_RETRY_AFTER`]) or
/// [`backoff`], while attempts remain, the wait fits the call's [`Deadline`] and Terraform
/// has not cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Attempts at most, the first included.
    pub attempts: u32,
    /// Whether a 5xx, a timeout or a failed connection is sent again, or only a 429 (which a
    /// server answers before doing anything: a create may have acted before the others).
    pub after_failure: bool,
    /// Whether a Retry-After sets the wait (Wiz's token endpoint: always the backoff).
    pub retry_after: bool,
}

impl Policy {
    /// An idempotent call: retried as [`Policy`] says, up to `attempts` attempts.
    pub fn idempotent(attempts: u32) -> Policy {
        Policy {
            attempts,
            after_failure: true,
            retry_after: true,
        }
    }

    /// A call sent once (a create that could make a second object).
    pub fn once() -> Policy {
        Policy::idempotent(1)
    }
}

/// The attempts made of one call under its policy.
pub struct Attempts {
    policy: Policy,
    made: u32,
}

impl Attempts {
    pub fn new(policy: Policy) -> Attempts {
        Attempts { policy, made: 0 }
    }

    /// After a failed attempt of `call` (why: `reason`): waits `hint`, or the backoff, and
    /// says whether to attempt again (logged at warn); false at once when the attempts are
    /// spent or the wait would not fit in `deadline`, and false when Terraform cancelled
    /// meanwhile.
    pub async fn again(
        &self,
        deadline: &Deadline,
        hint: Option<Duration>,
        call: &str,
        reason: impl std::fmt::Display,
    ) -> bool {
        let wait = hint.unwrap_or_else(|| backoff(self.made));
        if self.made >= self.policy.attempts || !deadline.allows(wait) {
            return false;
        }
        tracing::warn!(
            call,
            attempt = self.made,
            wait_ms = wait.as_millis() as u64,
            %reason,
            "retrying"
        );
        pause(wait).await
    }
}

/// A client's side of the wire: the HTTP client bound by its [`Limits`], and the vendor's name
/// for the log.
pub struct Transport {
    http: reqwest::Client,
    limits: Limits,
    vendor: &'static str,
}

impl Transport {
    pub fn new(vendor: &'static str, limits: &Limits) -> Result<Transport, reqwest::Error> {
        Ok(Transport {
            http: limits.client()?,
            limits: *limits,
            vendor,
        })
    }

    /// The same vendor with other limits.
    pub fn with_limits(&self, limits: &Limits) -> Result<Transport, reqwest::Error> {
        Transport::new(self.vendor, limits)
    }

    /// The deadline of a call starting now.
    pub fn deadline(&self) -> Deadline {
        Deadline::start(&self.limits)
    }

    /// A request to build on; [`Transport::attempt`] sets its timeout.
    pub fn request(&self, method: reqwest::Method, url: Url) -> reqwest::RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends `request` as the next attempt of a call (`what` names it in the log): the answer
    /// to keep, or `None` when the policy sends it again and the wait is over (build it again
    /// and attempt), or the failure that ends the call.
    pub async fn attempt(
        &self,
        tries: &mut Attempts,
        deadline: &mut Deadline,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Option<reqwest::Response>, reqwest::Error> {
        tries.made += 1;
        let request = request.timeout(deadline.attempt()).build()?;
        let call = format!("{} {} {what}", self.vendor, request.method());
        let started = std::time::Instant::now();
        let sent = self.http.execute(request).await;
        let ms = started.elapsed().as_millis() as u64;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(call, attempt = tries.made, ms, error = %e, "call failed");
                if tries.policy.after_failure
                    && (e.is_connect() || e.is_timeout())
                    && tries.again(deadline, None, &call, &e).await
                {
                    return Ok(None);
                }
                return Err(e);
            }
        };
        let status = resp.status().as_u16();
        tracing::debug!(call, status, attempt = tries.made, ms, "call");
        let again = status == 429 || (tries.policy.after_failure && transient(status));
        if again && tries.made < tries.policy.attempts {
            let hint = if tries.policy.retry_after {
                retry_after(&resp).map(|d| d.min(MAX_RETRY_AFTER))
            } else {
                None
            };
            let reason = format!("HTTP {status}");
            if tries.again(deadline, hint, &call, reason).await {
                return Ok(None);
            }
        }
        Ok(Some(resp))
    }

    /// Sends a call, built by `request` for each attempt, as `policy` allows within
    /// `deadline`: its last answer, or the failure that ended it.
    pub async fn send(
        &self,
        deadline: &mut Deadline,
        policy: Policy,
        what: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, reqwest::Error> {
        let mut tries = Attempts::new(policy);
        loop {
            if let Some(resp) = self.attempt(&mut tries, deadline, what, request()).await? {
                return Ok(resp);
            }
        }
    }
}

/// A call's last answer, read whole.
pub struct Answer {
    pub status: u16,
    /// Its Retry-After, uncapped.
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

impl Transport {
    /// Sends a call as [`Transport::send`] does within a deadline of its own and reads its last
    /// answer; a failure comes described ([`Deadline::describe`]).
    pub async fn call(
        &self,
        policy: Policy,
        what: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, String> {
        let mut deadline = self.deadline();
        let resp = self
            .send(&mut deadline, policy, what, request)
            .await
            .map_err(|e| deadline.describe(&e))?;
        let status = resp.status().as_u16();
        let retry_after = retry_after(&resp);
        let body = resp.bytes().await.map_err(|e| deadline.describe(&e))?;
        Ok(Answer {
            status,
            retry_after,
            body: body.to_vec(),
        })
    }
}

/// `req` accepting `media`, and carrying `body` as `media` when there is one.
pub fn with_json(
    req: reqwest::RequestBuilder,
    media: &str,
    body: Option<&serde_json::Value>,
) -> reqwest::RequestBuilder {
    let req = req.header("Accept", media);
    match body {
        Some(b) => req.header("Content-Type", media).body(b.to_string()),
        None => req,
    }
}

/// The name of an HTTP method as errors show it.
pub fn verb(method: &reqwest::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        _ => "request",
    }
}

/// `base` with `api` and `path` after its own path (a console may live below a path).
pub fn api_url(base: &Url, api: &str, path: &str) -> Url {
    let mut u = base.clone();
    let prefix = u.path().trim_end_matches('/').to_string();
    u.set_path(&format!("{prefix}{api}/{}", path.trim_start_matches('/')));
    u
}

/// The end of one call: each attempt gets the request limit, cut to what is left of the total.
pub struct Deadline {
    start: Instant,
    limits: Limits,
    attempts: u32,
}

impl Deadline {
    pub fn start(limits: &Limits) -> Deadline {
        Deadline {
            start: Instant::now(),
            limits: *limits,
            attempts: 0,
        }
    }

    fn left(&self) -> Duration {
        self.limits.total.saturating_sub(self.start.elapsed())
    }

    /// The time the next attempt may take (counts the attempt).
    pub fn attempt(&mut self) -> Duration {
        self.attempts += 1;
        self.limits.request.min(self.left()).max(MIN_ATTEMPT)
    }

    /// Whether another attempt after waiting `wait` still fits in the total.
    pub fn allows(&self, wait: Duration) -> bool {
        self.left() >= wait + MIN_ATTEMPT
    }

    /// A failed request in words: its cause (timed out, connection refused, DNS, TLS) and what
    /// to do; vendor text in it is redacted.
    pub fn describe(&self, e: &reqwest::Error) -> String {
        let cause = cause(e);
        let text = match cause.kind {
            Cause::Timeout => format!(
                "timed out: no answer within {} s ({} attempt{} in {} s; the limits are the provider's `request_timeout` (EXPEL_REQUEST_TIMEOUT, default {} s) and `request_total_timeout` (EXPEL_REQUEST_TOTAL_TIMEOUT, default {} s): raise them if the server is only slow)",
                self.limits.request.min(self.limits.total).as_secs(),
                self.attempts,
                if self.attempts == 1 { "" } else { "s" },
                self.start.elapsed().as_secs(),
                Limits::default().request.as_secs(),
                Limits::default().total.as_secs(),
            ),
            Cause::Refused => format!("connection refused: nothing listens there; check the URL and that the server runs ({})", cause.detail),
            Cause::Dns => format!("DNS lookup failed: the host name does not resolve; check the URL for a typo ({})", cause.detail),
            Cause::Tls => format!("TLS handshake failed: check that the URL's scheme and port are right and that the server's certificate is valid for its host ({})", cause.detail),
            Cause::Other => cause.detail,
        };
        super::secret::redact(&text)
    }
}

#[derive(Debug, PartialEq)]
enum Cause {
    Timeout,
    Refused,
    Dns,
    Tls,
    Other,
}

struct Found {
    kind: Cause,
    /// The innermost message of the error chain.
    detail: String,
}

/// The cause of a failed request, from reqwest's error chain (`source()` and the errors
/// `std::io::Error` wraps).
fn cause(e: &reqwest::Error) -> Found {
    let mut messages = Vec::new();
    let mut kind = if e.is_timeout() {
        Cause::Timeout
    } else {
        Cause::Other
    };
    let mut next: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(err) = next {
        messages.push(err.to_string());
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => kind = Cause::Refused,
                std::io::ErrorKind::TimedOut => kind = Cause::Timeout,
                // What the TLS layer answers a handshake it cannot complete.
                std::io::ErrorKind::InvalidData => kind = Cause::Tls,
                _ => {}
            }
            if let Some(inner) = io.get_ref() {
                if inner.downcast_ref::<rustls::Error>().is_some() {
                    kind = Cause::Tls;
                }
                messages.push(inner.to_string());
            }
        }
        if err.downcast_ref::<rustls::Error>().is_some() {
            kind = Cause::Tls;
        }
        next = err.source();
    }
    if kind == Cause::Other {
        let all = messages.join(" ").to_ascii_lowercase();
        if all.contains("dns error") || all.contains("failed to lookup address") {
            kind = Cause::Dns;
        } else if [
            "tls",
            "certificate",
            "corrupt message",
            "alert",
            "handshake",
        ]
        .iter()
        .any(|w| all.contains(w))
        {
            kind = Cause::Tls;
        }
    }
    let detail = messages.pop().unwrap_or_else(|| {
        let text = e.to_string();
        match e.url() {
            Some(u) => text.replace(&format!(" for url ({u})"), ""),
            None => text,
        }
    });
    Found { kind, detail }
}

/// A URL as errors show it: scheme, host, port and path; never credentials or a query.
pub fn display_url(u: &Url) -> String {
    let mut u = u.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// Whether the URL points at this machine: localhost, 127.0.0.0/8 or ::1.
pub fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether a secret may travel to this URL: https, or http on this machine only.
pub fn may_carry_secrets(u: &Url) -> bool {
    u.scheme() == "https" || (u.scheme() == "http" && is_loopback(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn secrets_go_over_https_or_stay_on_this_machine() {
        for ok in [
            "https://workbench.expel.io",
            "http://127.0.0.1:8080",
            "http://127.3.2.1/x",
            "http://localhost:1",
            "http://[::1]:9/graphql",
        ] {
            assert!(may_carry_secrets(&url(ok)), "{ok}");
        }
        for bad in [
            "http://workbench.expel.io",
            "http://192.0.2.2:8080",
            "http://localhost.example.com",
            "http://128.0.0.1",
            "ftp://127.0.0.1",
        ] {
            assert!(!may_carry_secrets(&url(bad)), "{bad}");
        }
    }

    #[test]
    fn urls_in_errors_carry_no_credentials_or_query() {
        assert_eq!(
            display_url(&url("https://u:p@h.example/api?token=t#f")),
            "https://h.example/api"
        );
    }

    fn limits(request_ms: u64, total_ms: u64) -> Limits {
        Limits {
            request: Duration::from_millis(request_ms),
            total: Duration::from_millis(total_ms),
        }
    }

    #[test]
    fn an_attempt_gets_the_request_limit_cut_to_the_total() {
        let mut d = Deadline::start(&limits(30_000, 45_000));
        assert_eq!(d.attempt(), Duration::from_secs(30));
        assert!(d.allows(Duration::from_secs(40)));
        assert!(!d.allows(Duration::from_secs(45)));
        let mut d = Deadline::start(&limits(30_000, 10_000));
        assert!(d.attempt() <= Duration::from_secs(10));
    }

    /// A server answering its n-th request with the status line (and header lines) `heads[n]`,
    /// the last one ever after; the number of requests it answered.
    async fn answering(
        heads: &'static [&'static str],
    ) -> (Url, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::Ordering::SeqCst;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = url(&format!("http://{}/", listener.local_addr().unwrap()));
        let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let answered = count.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = sock.read(&mut request).await;
                let n = answered.fetch_add(1, SeqCst);
                let head = heads[n.min(heads.len() - 1)];
                let answer =
                    format!("HTTP/1.1 {head}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = sock.write_all(answer.as_bytes()).await;
            }
        });
        (url, count)
    }

    /// The status that ends one GET sent with `policy`, and how many requests it took.
    async fn sent(heads: &'static [&'static str], policy: Policy) -> (u16, usize) {
        let (url, count) = answering(heads).await;
        let t = Transport::new("Test", &Limits::default()).unwrap();
        let mut deadline = t.deadline();
        let resp = t
            .send(&mut deadline, policy, "/", || {
                t.request(reqwest::Method::GET, url.clone())
            })
            .await
            .unwrap();
        let n = count.load(std::sync::atomic::Ordering::SeqCst);
        (resp.status().as_u16(), n)
    }

    #[tokio::test]
    async fn one_policy_resends_what_it_may_as_often_as_it_may() {
        const BUSY_THEN_OK: &[&str] = &["503 X\r\nRetry-After: 0", "200 OK"];
        const THROTTLED_THEN_OK: &[&str] = &["429 X\r\nRetry-After: 0", "200 OK"];
        const BUSY: &[&str] = &["503 X\r\nRetry-After: 0"];
        assert_eq!(sent(BUSY_THEN_OK, Policy::idempotent(3)).await, (200, 2));
        assert_eq!(
            sent(BUSY, Policy::idempotent(3)).await,
            (503, 3),
            "attempts spent"
        );
        assert_eq!(
            sent(BUSY_THEN_OK, Policy::once()).await,
            (503, 1),
            "sent once"
        );
        let throttle_only = Policy {
            after_failure: false,
            ..Policy::idempotent(3)
        };
        assert_eq!(
            sent(BUSY_THEN_OK, throttle_only).await,
            (503, 1),
            "a 5xx is not resent"
        );
        assert_eq!(
            sent(THROTTLED_THEN_OK, throttle_only).await,
            (200, 2),
            "a 429 is"
        );
    }

    #[tokio::test]
    async fn a_retry_after_sets_the_wait_unless_the_policy_ignores_it() {
        const SLOW_DOWN: &[&str] = &["429 X\r\nRetry-After: 1", "200 OK"];
        let start = Instant::now();
        assert_eq!(sent(SLOW_DOWN, Policy::idempotent(2)).await, (200, 2));
        assert!(
            start.elapsed() >= Duration::from_secs(1),
            "waited Retry-After"
        );
        let backoff_only = Policy {
            retry_after: false,
            ..Policy::idempotent(2)
        };
        let start = Instant::now();
        assert_eq!(sent(SLOW_DOWN, backoff_only).await, (200, 2));
        let waited = start.elapsed();
        assert!(
            waited >= backoff(1) && waited < Duration::from_secs(1),
            "waited the backoff: {waited:?}"
        );
    }

    /// The error of one GET to `url` with these limits, as `describe` words it.
    async fn failure(url: &str, limits: Limits) -> String {
        let mut d = Deadline::start(&limits);
        let t = d.attempt();
        let e = limits
            .client()
            .unwrap()
            .get(url)
            .timeout(t)
            .send()
            .await
            .unwrap_err();
        d.describe(&e)
    }

    #[tokio::test]
    async fn transport_errors_name_their_cause() {
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let e = failure(&format!("http://127.0.0.1:{port}/"), Limits::default()).await;
        assert!(e.starts_with("connection refused"), "{e}");

        let e = failure("http://no-such-host.invalid/", Limits::default()).await;
        assert!(e.starts_with("DNS lookup failed"), "{e}");

        // A plain-HTTP server where TLS is expected.
        let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = plain.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut s, _)) = plain.accept().await {
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let e = failure(&format!("https://{addr}/"), Limits::default()).await;
        assert!(e.starts_with("TLS handshake failed"), "{e}");

        // A server that accepts and never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let e = failure(&format!("http://{addr}/"), limits(1_000, 5_000)).await;
        assert!(e.starts_with("timed out"), "{e}");
        assert!(e.contains("EXPEL_REQUEST_TIMEOUT"), "{e}");
    }
}
