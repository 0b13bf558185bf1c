//! The memcached backend on real servers: pymemcache's flags and key placement, must-create and
//! update semantics, `gets`/`cas`, Django's key rules, size limits, and failures (a server that
//! is down, that never answers, or that answers nonsense) reported as typed errors.
#![cfg(feature = "memcached")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use bytes::Bytes;
use session_cache::{
    CacheBackend, CacheError, CasOutcome, FLAG_PICKLE, MemcachedCache, MemcachedError, Ttl,
};
use session_conformance::services;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn ttl(seconds: i64) -> Ttl {
    Ttl::from_age(seconds).unwrap()
}

/// The servers under test (all of them), or `None` when skipped.
fn urls(test: &str) -> Option<String> {
    services::url_or_skip(support::MEMCACHED_URLS, test)
}

fn unique_key(test: &str) -> String {
    format!(":1:{}", services::unique_name(test))
}

/// `host:port` of a `memcache://host:port` URL.
fn address(url: &str) -> String {
    url.trim().trim_start_matches("memcache://").to_owned()
}

/// What one server holds under `key`: `(flags, data)`, read over a raw connection.
async fn raw_get(address: &str, key: &str) -> Option<(u32, Vec<u8>)> {
    let stream = TcpStream::connect(address).await.unwrap();
    let mut stream = BufReader::new(stream);
    stream
        .get_mut()
        .write_all(format!("get {key}\r\n").as_bytes())
        .await
        .unwrap();
    let mut header = String::new();
    stream.read_line(&mut header).await.unwrap();
    if header == "END\r\n" {
        return None;
    }
    let fields: Vec<&str> = header.trim_end().split(' ').collect();
    assert_eq!(fields[..2], ["VALUE", key], "{header:?}");
    let flags = fields[2].parse().unwrap();
    let mut data = vec![0; fields[3].parse::<usize>().unwrap() + 2];
    stream.read_exact(&mut data).await.unwrap();
    data.truncate(data.len() - 2);
    Some((flags, data))
}

#[tokio::test]
async fn values_carry_pymemcaches_pickle_flag() {
    let Some(urls) = urls("values_carry_pymemcaches_pickle_flag") else {
        return;
    };
    let first = support::first_url(&urls);
    let cache = MemcachedCache::connect(&first).await.unwrap();
    let key = unique_key("flags");
    let pickle = Bytes::from_static(b"\x80\x04}\x94.");
    cache.set(&key, pickle.clone(), ttl(60)).await.unwrap();
    assert_eq!(
        raw_get(&address(&first), &key).await,
        Some((FLAG_PICKLE, pickle.to_vec()))
    );
    assert_eq!(cache.get(&key).await.unwrap(), Some(pickle));
    assert!(cache.delete(&key).await.unwrap());
}

#[tokio::test]
async fn each_key_lives_on_the_server_pymemcache_chooses() {
    let Some(urls) = urls("each_key_lives_on_the_server_pymemcache_chooses") else {
        return;
    };
    let servers: Vec<String> = urls.split(',').map(address).collect();
    assert!(servers.len() >= 2, "several servers needed: {urls}");
    let cache = MemcachedCache::connect(&urls).await.unwrap();
    assert_eq!(cache.servers(), servers);
    let mut used = std::collections::BTreeSet::new();
    for n in 0..30 {
        let key = format!("{}:{n}", unique_key("placement"));
        cache.add(&key, Bytes::from("v"), ttl(60)).await.unwrap();
        let home = cache.server_for(&key).to_owned();
        used.insert(home.clone());
        for server in &servers {
            let held = raw_get(server, &key).await.is_some();
            assert_eq!(held, *server == home, "{key} on {server} (home {home})");
        }
        cache.delete(&key).await.unwrap();
    }
    assert_eq!(
        used.len(),
        servers.len(),
        "30 keys spread over every server"
    );
}

#[tokio::test]
async fn add_creates_once_and_replace_never_creates() {
    let Some(urls) = urls("add_creates_once_and_replace_never_creates") else {
        return;
    };
    let cache = MemcachedCache::connect(&urls).await.unwrap();
    let key = unique_key("add_replace");
    assert!(!cache.replace(&key, "r".into(), ttl(60)).await.unwrap());
    assert!(!cache.exists(&key).await.unwrap());
    assert!(cache.add(&key, "a".into(), ttl(60)).await.unwrap());
    assert!(!cache.add(&key, "b".into(), ttl(60)).await.unwrap());
    assert_eq!(cache.get(&key).await.unwrap().as_deref(), Some(&b"a"[..]));
    assert!(cache.replace(&key, "c".into(), ttl(60)).await.unwrap());
    assert_eq!(cache.get(&key).await.unwrap().as_deref(), Some(&b"c"[..]));
    assert!(cache.delete(&key).await.unwrap());
    assert!(!cache.delete(&key).await.unwrap());
}

#[tokio::test]
async fn of_concurrent_adds_exactly_one_wins() {
    let Some(urls) = urls("of_concurrent_adds_exactly_one_wins") else {
        return;
    };
    let cache = std::sync::Arc::new(MemcachedCache::connect(&urls).await.unwrap());
    let key = unique_key("race");
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let (cache, key) = (cache.clone(), key.clone());
            tokio::spawn(async move { cache.add(&key, n.to_string().into(), ttl(60)).await })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap().unwrap());
    }
    assert_eq!(winners, 1);
    cache.delete(&key).await.unwrap();
}

#[tokio::test]
async fn cas_stores_only_over_the_version_read() {
    let Some(urls) = urls("cas_stores_only_over_the_version_read") else {
        return;
    };
    let cache = MemcachedCache::connect(&urls).await.unwrap();
    let key = unique_key("cas");
    assert_eq!(cache.gets(&key).await.unwrap(), None);
    cache.set(&key, "v1".into(), ttl(60)).await.unwrap();
    let (value, token) = cache.gets(&key).await.unwrap().unwrap();
    assert_eq!(value, "v1");
    let (_, same) = cache.gets(&key).await.unwrap().unwrap();
    assert_eq!(token, same, "reading does not change the version");

    assert_eq!(
        cache.cas(&key, "v2".into(), ttl(60), token).await.unwrap(),
        CasOutcome::Stored
    );
    // The token is now stale.
    assert_eq!(
        cache.cas(&key, "v3".into(), ttl(60), token).await.unwrap(),
        CasOutcome::Changed
    );
    assert_eq!(cache.get(&key).await.unwrap().unwrap(), "v2");
    cache.delete(&key).await.unwrap();
    assert_eq!(
        cache.cas(&key, "v4".into(), ttl(60), token).await.unwrap(),
        CasOutcome::NotFound
    );
    assert!(!cache.exists(&key).await.unwrap(), "cas never recreates");
}

#[tokio::test]
async fn keys_memcached_refuses_are_errors_to_write_and_misses_to_read() {
    let Some(urls) = urls("keys_memcached_refuses_are_errors_to_write_and_misses_to_read") else {
        return;
    };
    let cache = MemcachedCache::connect(&urls).await.unwrap();
    for key in [
        "has space".to_owned(),
        "k".repeat(251),
        "ctl\x07".to_owned(),
    ] {
        match cache.set(&key, "v".into(), ttl(60)).await {
            Err(CacheError::Memcached {
                source: MemcachedError::InvalidKey { .. },
                ..
            }) => {}
            other => panic!("{key:?}: {other:?}"),
        }
        assert!(cache.add(&key, "v".into(), ttl(60)).await.is_err());
        assert!(cache.replace(&key, "v".into(), ttl(60)).await.is_err());
        assert_eq!(cache.get(&key).await.unwrap(), None);
        assert!(!cache.exists(&key).await.unwrap());
        assert!(!cache.delete(&key).await.unwrap());
    }
    // Unicode keys are allowed (Django sets allow_unicode_keys) up to 250 bytes.
    let unicode = format!("{}:zoë", unique_key("unicode"));
    cache.set(&unicode, "v".into(), ttl(60)).await.unwrap();
    assert_eq!(cache.get(&unicode).await.unwrap().unwrap(), "v");
    cache.delete(&unicode).await.unwrap();
}

#[tokio::test]
async fn a_value_over_the_limit_is_refused_and_the_old_one_kept() {
    let Some(urls) = urls("a_value_over_the_limit_is_refused_and_the_old_one_kept") else {
        return;
    };
    let cache = MemcachedCache::builder(&urls)
        .max_value_size(1000)
        .connect()
        .await
        .unwrap();
    let key = unique_key("size");
    cache.set(&key, "old".into(), ttl(60)).await.unwrap();
    match cache.set(&key, vec![b'x'; 1001].into(), ttl(60)).await {
        Err(CacheError::Memcached {
            source:
                MemcachedError::ValueTooLarge {
                    size: 1001,
                    limit: 1000,
                },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(cache.get(&key).await.unwrap().unwrap(), "old");

    // Past the server's own item limit (1 MiB by default): the server's refusal is reported.
    // A refused `replace` (how sessions are updated) leaves the old value; a refused `set` has
    // memcached drop it (so no stale value outlives a failed write, which Django also wants).
    let big = MemcachedCache::builder(&urls)
        .max_value_size(4 << 20)
        .connect()
        .await
        .unwrap();
    let server_refuses = |result: Result<_, CacheError>| match result {
        Err(CacheError::Memcached {
            source: MemcachedError::Server { .. },
            ..
        }) => {}
        other => panic!("{other:?}"),
    };
    server_refuses(
        big.replace(&key, vec![b'x'; 2 << 20].into(), ttl(60))
            .await
            .map(drop),
    );
    // The connection was dropped after the error; the next call works.
    assert_eq!(big.get(&key).await.unwrap().unwrap(), "old");
    server_refuses(big.set(&key, vec![b'x'; 2 << 20].into(), ttl(60)).await);
    assert_eq!(big.get(&key).await.unwrap(), None);
}

#[tokio::test]
async fn lifetimes_over_thirty_days_are_kept() {
    let Some(urls) = urls("lifetimes_over_thirty_days_are_kept") else {
        return;
    };
    let cache = MemcachedCache::connect(&urls).await.unwrap();
    let key = unique_key("long");
    cache
        .set(&key, "v".into(), ttl(90 * 24 * 3600))
        .await
        .unwrap();
    assert!(cache.exists(&key).await.unwrap());
    cache.set(&key, "v".into(), Ttl::MAX).await.unwrap();
    assert!(cache.exists(&key).await.unwrap());
    cache.delete(&key).await.unwrap();
}

#[tokio::test]
async fn entries_expire_after_their_lifetime() {
    let Some(urls) = urls("entries_expire_after_their_lifetime") else {
        return;
    };
    let cache = MemcachedCache::connect(&urls).await.unwrap();
    let key = unique_key("expiry");
    cache.set(&key, "v".into(), ttl(1)).await.unwrap();
    assert!(cache.exists(&key).await.unwrap());
    // memcached's clock ticks in whole seconds: an entry set for 1 s is gone within 2.1 s.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(!cache.exists(&key).await.unwrap());
}

/// A free loopback port with nothing listening on it.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_server_that_is_down_is_a_connection_error() {
    let port = closed_port().await;
    match MemcachedCache::connect(&format!("memcache://127.0.0.1:{port}")).await {
        Err(CacheError::Memcached {
            source: MemcachedError::Io(_),
            server,
        }) => assert_eq!(server, format!("127.0.0.1:{port}")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_server_lists_are_configuration_errors() {
    for urls in ["", " , ", "redis://127.0.0.1:6379", "127.0.0.1:port"] {
        assert!(
            matches!(
                MemcachedCache::connect(urls).await,
                Err(CacheError::Config(_))
            ),
            "{urls:?}"
        );
    }
}

/// A memcached of this test's own on a free port, killed when dropped.
struct OwnMemcached {
    child: tokio::process::Child,
    port: u16,
}

impl OwnMemcached {
    async fn start_on(port: u16) -> Option<OwnMemcached> {
        let child = tokio::process::Command::new("memcached")
            .args([
                "-l",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "0",
                "-m",
                "8",
            ])
            .args(["-u", "root"])
            .kill_on_drop(true)
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) if !services::required() => {
                eprintln!("skipped: cannot start memcached: {error}");
                return None;
            }
            Err(error) => panic!("cannot start memcached: {error}"),
        };
        for _ in 0..100 {
            if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(OwnMemcached { child, port });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("memcached did not start on port {port}");
    }

    async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

#[tokio::test]
async fn calls_fail_while_the_server_is_down_and_work_once_it_is_back() {
    let port = closed_port().await;
    let Some(server) = OwnMemcached::start_on(port).await else {
        return;
    };
    let cache = MemcachedCache::builder(&format!("memcache://127.0.0.1:{port}"))
        .connection_timeout(Duration::from_millis(500))
        .response_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    cache.set("k", "v".into(), ttl(60)).await.unwrap();
    server.stop().await;
    for _ in 0..3 {
        let error = cache.get("k").await.unwrap_err();
        assert!(matches!(error, CacheError::Memcached { .. }), "{error:?}");
        let core: session_core::Error = error.into();
        assert!(matches!(core, session_core::Error::Store(_)), "{core:?}");
    }
    let server = OwnMemcached::start_on(port).await.unwrap();
    // A fresh server: the entry is gone, and the cache works again without being rebuilt.
    assert_eq!(cache.get("k").await.unwrap(), None);
    assert!(cache.add("k", "v2".into(), ttl(60)).await.unwrap());
    assert_eq!(server.port, port);
    server.stop().await;
}

/// A TCP server that answers every connection with `reply` (after reading one request), for
/// the replies no real memcached sends.
async fn hostile_server(reply: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                let mut line = String::new();
                while stream.read_line(&mut line).await.unwrap_or(0) > 0 {
                    if line.starts_with("version") {
                        let _ = stream.get_mut().write_all(b"VERSION 1.6.0\r\n").await;
                    } else if !reply.is_empty() {
                        let _ = stream.get_mut().write_all(reply).await;
                    }
                    line.clear();
                }
            });
        }
    });
    address
}

async fn get_from(reply: &'static [u8]) -> Result<Option<Bytes>, CacheError> {
    let address = hostile_server(reply).await;
    let cache = MemcachedCache::builder(&address)
        .response_timeout(Duration::from_millis(300))
        .max_value_size(1024)
        .connect()
        .await
        .unwrap();
    cache.get("key").await
}

#[tokio::test]
async fn nonsense_replies_are_protocol_errors_never_panics() {
    let overlong: &'static [u8] = Box::leak(vec![b'x'; 5000].into_boxed_slice());
    for reply in [
        &b"HELLO\r\n"[..],
        b"VALUE other 0 1\r\nx\r\nEND\r\n",
        b"VALUE key nope 1\r\nx\r\nEND\r\n",
        b"VALUE key 0 1\r\nxyz\r\nEND\r\n",
        b"VALUE key 0 1\r\nx\r\nMORE\r\n",
        b"\xff\xfe\r\n",
        overlong,
    ] {
        match get_from(reply).await {
            Err(CacheError::Memcached {
                source: MemcachedError::Protocol(_),
                ..
            }) => {}
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(reply)),
        }
    }
}

#[tokio::test]
async fn an_announced_value_over_the_limit_is_refused_before_it_is_read() {
    match get_from(b"VALUE key 1 1073741824\r\n").await {
        Err(CacheError::Memcached {
            source:
                MemcachedError::ValueTooLarge {
                    size: 1073741824,
                    limit: 1024,
                },
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn error_replies_are_server_errors() {
    for reply in [&b"ERROR\r\n"[..], b"SERVER_ERROR out of memory\r\n"] {
        match get_from(reply).await {
            Err(CacheError::Memcached {
                source: MemcachedError::Server { .. },
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    match get_from(b"").await {
        Err(CacheError::Memcached {
            source:
                MemcachedError::Timeout {
                    operation: "get",
                    after,
                },
            ..
        }) => assert_eq!(after, Duration::from_millis(300)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn concurrent_calls_beyond_the_idle_pool_open_extra_connections() {
    let Some(urls) = urls("concurrent_calls_beyond_the_idle_pool_open_extra_connections") else {
        return;
    };
    let cache = std::sync::Arc::new(
        MemcachedCache::builder(&urls)
            .max_idle_connections(1)
            .connect()
            .await
            .unwrap(),
    );
    let prefix = unique_key("pool");
    let tasks: Vec<_> = (0..32)
        .map(|n| {
            let (cache, key) = (cache.clone(), format!("{prefix}:{n}"));
            tokio::spawn(async move {
                cache.set(&key, n.to_string().into(), ttl(60)).await?;
                let value = cache.get(&key).await?;
                cache.delete(&key).await?;
                Ok::<_, CacheError>(value)
            })
        })
        .collect();
    for (n, task) in tasks.into_iter().enumerate() {
        let value = task.await.unwrap().unwrap();
        assert_eq!(value, Some(Bytes::from(n.to_string())));
    }
}
