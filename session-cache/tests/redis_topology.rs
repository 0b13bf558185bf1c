//! Choosing a single server or a Cluster by URL or builder, and what connecting reports.
#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use session_cache::{Cache, CacheBackend, CacheError, RedisCache, Ttl};
use session_conformance::services;

#[tokio::test]
async fn one_url_connects_to_a_single_server() {
    let test = "one_url_connects_to_a_single_server";
    let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
        return;
    };
    let redis = RedisCache::connect(&url).await.unwrap();
    assert!(!redis.is_cluster());
    assert_eq!(
        format!("{redis:?}"),
        format!("RedisCache({})", redis.location())
    );
}

#[tokio::test]
async fn seed_urls_reach_every_node_of_the_cluster() {
    let test = "seed_urls_reach_every_node_of_the_cluster";
    let Some(urls) = services::url_or_skip(services::REDIS_CLUSTER_URLS, test) else {
        return;
    };
    let first_seed = urls.split(',').next().unwrap();
    for redis in [
        RedisCache::connect(&urls).await.unwrap(),
        // One seed is enough when the builder is told it is a Cluster.
        RedisCache::builder(first_seed)
            .cluster()
            .connect()
            .await
            .unwrap(),
    ] {
        assert!(redis.is_cluster());
        let cache = Cache::new(redis).with_key_prefix(services::unique_name("djsession_test"));
        // 64 keys land in slots owned by every node; a single-node connection would get MOVED.
        for i in 0..64 {
            assert!(
                cache
                    .add(&format!("k{i}"), format!("{i}").into(), 60)
                    .await
                    .unwrap()
            );
        }
        for i in 0..64 {
            let value = cache.get(&format!("k{i}")).await.unwrap();
            assert_eq!(value.as_deref(), Some(format!("{i}").as_bytes()));
            assert!(cache.delete(&format!("k{i}")).await.unwrap());
        }
    }
}

#[tokio::test]
async fn connecting_to_nothing_fails_promptly_with_the_location() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}");
    let attempt = RedisCache::builder(&url)
        .connection_timeout(Duration::from_millis(200))
        .reconnect_attempts(0)
        .connect();
    let result = tokio::time::timeout(Duration::from_secs(10), attempt)
        .await
        .expect("connecting to a closed port hung");
    match result {
        Err(error @ CacheError::Redis { .. }) => {
            let message = error.to_string();
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
            assert!(
                !message.contains("hunter2"),
                "the password leaked: {message}"
            );
        }
        other => panic!("expected a Redis error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_malformed_url_is_an_error_not_a_panic() {
    for url in [
        "not a url",
        "http://127.0.0.1:6379",
        "redis://127.0.0.1:notaport",
    ] {
        assert!(RedisCache::connect(url).await.is_err(), "{url}");
    }
}

#[tokio::test]
async fn every_ttl_redis_accepts_up_to_the_maximum() {
    let test = "every_ttl_redis_accepts_up_to_the_maximum";
    let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
        return;
    };
    let redis = RedisCache::connect(&url).await.unwrap();
    let key = services::unique_name("djsession_test_ttl");
    redis.set(&key, "v".into(), Ttl::MAX).await.unwrap();
    assert!(redis.exists(&key).await.unwrap());
    assert!(redis.delete(&key).await.unwrap());
}

#[tokio::test]
async fn command_runs_other_redis_commands_on_the_cache_connection() {
    let test = "command_runs_other_redis_commands_on_the_cache_connection";
    let Some(url) = services::url_or_skip(services::REDIS_URL, test) else {
        return;
    };
    let redis = RedisCache::connect(&url).await.unwrap();
    let key = services::unique_name("djsession_test_command");
    let added: u64 = redis
        .command(redis::cmd("SADD").arg(&key).arg("a").arg("b"))
        .await
        .unwrap();
    assert_eq!(added, 2);
    let mut members: Vec<String> = redis
        .command(redis::cmd("SMEMBERS").arg(&key))
        .await
        .unwrap();
    members.sort();
    assert_eq!(members, ["a", "b"]);
    // A reply of the wrong shape is an error, not a panic.
    let wrong = redis.command::<u64>(redis::cmd("SMEMBERS").arg(&key)).await;
    assert!(matches!(wrong, Err(CacheError::Redis { .. })), "{wrong:?}");
    assert!(redis.delete(&key).await.unwrap());
}
