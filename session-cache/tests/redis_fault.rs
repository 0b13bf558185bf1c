//! Redis going away and coming back: calls fail promptly with an error while it is down, nothing
//! panics, and the same store works again once Redis is back on the same port.
//!
//! The test starts its own `redis-server` on a free loopback port (never the shared one) as a child
//! process, kills it mid-run and restarts it.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use session_cache::{Cache, CacheBackend, CacheStore, RedisCache, Ttl};
use session_conformance::services;
use session_core::{
    Dict, Error, SaveMode, Session, SessionKey, SessionRecord, SessionStore, Value,
};
use time::OffsetDateTime;

/// Far longer than any call may take while Redis is down (the store is configured for well under
/// a second); reaching it means a call hung.
const HANG: Duration = Duration::from_secs(15);

struct RedisServer {
    child: Child,
}

impl RedisServer {
    /// Starts `redis-server` on `port`, or `None` when it is not installed.
    fn start(port: u16) -> Option<Self> {
        Self::start_with(port, &[])
    }

    /// Starts `redis-server` on `port` with extra settings (`--requirepass …`).
    fn start_with(port: u16, settings: &[&str]) -> Option<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(settings)
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        let server = RedisServer { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(server)
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn record(data: &Dict) -> SessionRecord<'_> {
    SessionRecord {
        data,
        expires_at: OffsetDateTime::now_utc() + time::Duration::seconds(300),
        expiry_age: 300,
    }
}

fn data(n: i64) -> Dict {
    [("n".to_owned(), Value::from(n))].into_iter().collect()
}

/// Every store operation, once: each must end (not hang) and report the outage as a store error.
async fn every_operation_fails_with_a_store_error(store: &CacheStore, known: &SessionKey) {
    let fresh = SessionKey::generate().unwrap();
    let d = data(1);
    let results: Vec<(&str, Result<(), Error>)> = vec![
        ("load", store.load(known).await.map(drop)),
        ("exists", store.exists(known).await.map(drop)),
        (
            "save(MustCreate)",
            store
                .save(&fresh, record(&d), SaveMode::MustCreate)
                .await
                .map(drop),
        ),
        (
            "save(Update)",
            store
                .save(known, record(&d), SaveMode::Update)
                .await
                .map(drop),
        ),
        ("delete", store.delete(known).await),
    ];
    for (operation, result) in results {
        match result {
            Err(Error::Store(source)) => {
                let message = source.to_string();
                assert!(message.contains("redis error"), "{operation}: {message}");
                assert!(message.contains("127.0.0.1"), "{operation}: {message}");
            }
            other => {
                panic!("{operation} while Redis is down: expected a store error, got {other:?}")
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_calls_promptly_and_the_same_store_recovers() {
    let port = free_port();
    let Some(mut server) = RedisServer::start(port) else {
        assert!(
            !services::required(),
            "redis-server is not installed but {} = 1",
            services::REQUIRE_SERVICES
        );
        println!(
            "skipped redis_outage_fails_calls_promptly_and_the_same_store_recovers: redis-server is not installed"
        );
        return;
    };
    let url = format!("redis://127.0.0.1:{port}");
    let redis = RedisCache::builder(&url)
        .connection_timeout(Duration::from_millis(300))
        .response_timeout(Duration::from_millis(500))
        .reconnect_attempts(1)
        .connect()
        .await
        .unwrap();
    let store = CacheStore::new(Cache::new(redis), &session_conformance::config()).unwrap();
    let config = Arc::new(session_conformance::config());
    let shared: Arc<dyn SessionStore> = Arc::new(store.clone());

    // Up: a session is saved and read back.
    let session = Session::new(shared.clone(), config.clone(), None);
    session.insert("user", &7).await.unwrap();
    session.save().await.unwrap();
    let key = session.key().unwrap();
    assert_eq!(store.load(&key).await.unwrap(), Some(data_user(7)));

    // Down: every call ends with an error, repeatedly and concurrently, and nothing panics.
    server.kill();
    for _ in 0..3 {
        tokio::time::timeout(HANG, every_operation_fails_with_a_store_error(&store, &key))
            .await
            .expect("a call hung while Redis was down");
    }
    let concurrent: Vec<_> = (0..32)
        .map(|_| {
            let store = store.clone();
            let key = key.clone();
            tokio::spawn(async move { tokio::time::timeout(HANG, store.load(&key)).await })
        })
        .collect();
    for task in concurrent {
        let outcome = task.await.expect("a load panicked while Redis was down");
        let result = outcome.expect("a load hung while Redis was down");
        assert!(matches!(result, Err(Error::Store(_))), "{result:?}");
    }
    // Through a session too: the error reaches the caller instead of an empty session.
    let during = Session::new(shared.clone(), config.clone(), Some(key.as_str()));
    assert!(matches!(
        tokio::time::timeout(HANG, during.get::<i64>("user"))
            .await
            .unwrap(),
        Err(Error::Store(_))
    ));

    // Back on the same port (empty: no persistence): the same store works again.
    let _server = RedisServer::start(port).unwrap();
    let deadline = Instant::now() + HANG;
    let fresh = SessionKey::generate().unwrap();
    loop {
        match store
            .save(&fresh, record(&data(2)), SaveMode::MustCreate)
            .await
        {
            Ok(_) => break,
            Err(Error::Store(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("the store did not recover after Redis came back: {other:?}"),
        }
    }
    assert_eq!(store.load(&fresh).await.unwrap(), Some(data(2)));
    assert_eq!(
        store.load(&key).await.unwrap(),
        None,
        "the restarted Redis is empty"
    );
    let after = Session::new(shared, config, None);
    after.insert("user", &8).await.unwrap();
    after.save().await.unwrap();
    assert_eq!(
        store.load(&after.key().unwrap()).await.unwrap(),
        Some(data_user(8))
    );
}

fn data_user(n: i64) -> Dict {
    [("user".to_owned(), Value::from(n))].into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_and_database_in_the_url_hold_for_every_connection() {
    let port = free_port();
    let Some(_server) = RedisServer::start_with(port, &["--requirepass", "s3cret"]) else {
        assert!(
            !services::required(),
            "redis-server is not installed but {} = 1",
            services::REQUIRE_SERVICES
        );
        println!(
            "skipped a_password_and_database_in_the_url_hold_for_every_connection: redis-server is not installed"
        );
        return;
    };
    let url = format!("redis://:s3cret@127.0.0.1:{port}/5");
    let redis = RedisCache::connect(&url).await.unwrap();
    let ttl = Ttl::from_age(60).unwrap();
    // One caller at a time takes a direct connection, a crowd the shared one: both must
    // authenticate and write to database 5.
    redis.set("alone", "1".into(), ttl).await.unwrap();
    let crowd: Vec<_> = (0..32)
        .map(|n| {
            let redis = redis.clone();
            tokio::spawn(async move { redis.set(&format!("crowd{n}"), "2".into(), ttl).await })
        })
        .collect();
    for task in crowd {
        task.await.unwrap().unwrap();
    }
    let mut admin = redis::Client::open(format!("redis://:s3cret@127.0.0.1:{port}/5"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: usize = redis::cmd("DBSIZE").query_async(&mut admin).await.unwrap();
    assert_eq!(keys, 33, "every write landed in database 5");
    // The direct and the shared connections are open beside redis-rs's multiplexed one (a failed
    // handshake would have sent every call through the multiplexed connection, unseen by the
    // checks above).
    let admin_id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut admin)
        .await
        .unwrap();
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut admin)
        .await
        .unwrap();
    let ours = clients
        .lines()
        .filter(|line| !line.starts_with(&format!("id={admin_id} ")))
        .filter(|line| line.split(' ').any(|field| field == "db=5"))
        .count();
    assert!(ours >= 3, "{clients}");
    assert_eq!(
        redis.get("alone").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );

    let wrong = RedisCache::connect(&format!("redis://:wrong@127.0.0.1:{port}/5")).await;
    let error = wrong.unwrap_err().to_string();
    assert!(error.contains("127.0.0.1"), "{error}");
}
