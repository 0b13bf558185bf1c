//! Secrets and session keys never appear in `Debug`/`Display` output or in logs.
//!
//! Recognisable secrets (`SECRET_KEY`, a fallback) and real session keys (a generated key of the
//! memory store, a signed-cookie token) are pushed through the configuration, codec, signer,
//! sessions, stores and the layer, along their success and error paths, with every `tracing` event
//! of every thread captured with all its fields (`session_conformance::logs::all_threads`). Nothing
//! rendered may contain them.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::*;
use http::StatusCode;
use session_conformance::logs;
use session_cookie::CookieStore;
use session_core::serializer::SerializerName;
use session_core::{
    MemoryStore, SecretKey, Session, SessionCodec, SessionConfig, SessionKey, Value,
};
use session_signing::{Signer, TimestampSigner, UnsignOptions, legacy};

const PRIMARY: &str = "S3CRET-primary-4f9a1c02e7";
const FALLBACK: &str = "S3CRET-fallback-7b2e0d93aa";

/// Everything rendered during the test: Debug/Display output and log lines.
#[derive(Default)]
struct Rendered(Vec<String>);

impl Rendered {
    fn debug(&mut self, what: &str, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{what}: {value:?}"));
    }
    fn display(&mut self, what: &str, value: &dyn std::fmt::Display) {
        self.0.push(format!("{what}: {value} / {value:#}"));
    }
    fn error(&mut self, what: &str, error: &dyn std::error::Error) {
        self.0.push(format!("{what}: {error} / {error:?}"));
        let mut source = error.source();
        while let Some(inner) = source {
            self.0.push(format!("{what} (source): {inner} / {inner:?}"));
            source = inner.source();
        }
    }
}

fn config() -> SessionConfig {
    SessionConfig {
        secret_key_fallbacks: vec![SecretKey::from(FALLBACK)],
        ..SessionConfig::new(PRIMARY)
    }
}

#[test]
fn secrets_and_session_keys_appear_in_no_debug_display_or_log_output() {
    let all_threads = logs::all_threads();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut out = Rendered::default();
    let mut keys: Vec<String> = Vec::new();

    // Configuration, keys, signers, codecs.
    let config = config();
    out.debug("config", &config);
    out.debug("secret", &config.secret_key);
    out.display("secret", &config.secret_key);
    out.debug("fallbacks", &config.secret_key_fallbacks);
    let signer = TimestampSigner::new(SecretKey::from(PRIMARY))
        .with_fallback_keys([SecretKey::from(FALLBACK)]);
    out.debug("timestamp signer", &signer);
    out.debug("signer", &Signer::new(SecretKey::from(PRIMARY)));
    for serializer in [
        SerializerName::Json,
        SerializerName::MsgPack,
        SerializerName::Pickle,
    ] {
        let codec = SessionCodec::new(&SessionConfig {
            serializer,
            accept_legacy_formats: true,
            ..config.clone()
        })
        .unwrap();
        out.debug("codec", &codec);
        // Every failure of decoding, strict and lenient.
        for token in [
            "garbage",
            "e30:1r31eq:forged",
            &signer.sign_at("not base64!", 0),
            &signer.sign_at(".bm90IHpsaWI", 0),
            &legacy::encode_session(b"{}", &SecretKey::from("another secret"), "salt"),
        ] {
            if let Err(error) = codec.try_decode(token, None) {
                out.error("codec error", &error);
            }
            let _ = codec.decode(token);
        }
    }
    for token in ["x:y:z", "no separator", "e30:1r31eq:AAAA"] {
        let error = signer
            .unsign_object(token, &UnsignOptions::default())
            .unwrap_err();
        out.error("signing error", &error);
    }
    out.error(
        "config error",
        &SessionCodec::new(&SessionConfig::new("")).unwrap_err(),
    );

    runtime.block_on(async {
        // Sessions over the memory store: the key is a generated 32-character key.
        let store = Arc::new(MemoryStore::new());
        let shared_config = Arc::new(config.clone());
        let session = Session::new(store.clone(), shared_config.clone(), None);
        session.insert("user", &1).await.unwrap();
        session.save().await.unwrap();
        let key = session.key().unwrap();
        keys.push(key.as_str().to_owned());
        out.debug("session", &session);
        out.debug("key", &key);
        out.debug("memory store", &store);
        let reloaded = Session::new(store.clone(), shared_config.clone(), Some(key.as_str()));
        let _ = reloaded.len().await;
        out.debug("reloaded session", &reloaded);
        // A hostile expiry is logged as a warning: the key must not be in it.
        reloaded
            .insert_value("_session_expiry", Value::List(vec![]))
            .await
            .unwrap();
        let _ = reloaded.expiry_age().await;
        out.error("invalid key", &SessionKey::new("short").unwrap_err());
        let too_long = SessionKey::new(format!("{}{}", key.as_str(), "x".repeat(5000)));
        out.error("overlong key", &too_long.unwrap_err());

        // The signed-cookie store: the key is the token, a bearer credential.
        let cookies = Arc::new(CookieStore::new(&config).unwrap());
        out.debug("cookie store", &cookies);
        let session = Session::new(cookies.clone(), shared_config.clone(), None);
        session.insert("user", &2).await.unwrap();
        session.save().await.unwrap();
        let token = session.key().unwrap();
        keys.push(token.as_str().to_owned());
        out.debug("cookie session", &session);
        let forged = format!("{}A", token.as_str());
        let tampered = Session::new(cookies.clone(), shared_config.clone(), Some(&forged));
        let _ = tampered.len().await;
        keys.push(forged.clone());
        let big: String = (0..200)
            .map(|_| SessionKey::generate().unwrap().as_str().to_owned())
            .collect();
        session.insert("big", &big).await.unwrap();
        if let Err(error) = session.save().await {
            out.error("cookie too large", &error);
        }

        // The layer, over a memory store that fails, and over the cookie store.
        let failing = Arc::new(InstrumentedStore::default());
        let service = app(
            &layer(failing.clone(), config.clone()),
            |session| async move {
                // Fails when loading fails; the layer then reports it.
                let _ = session.insert("a", "b").await;
                ok()
            },
        );
        out.debug("layer", &layer(failing.clone(), config.clone()));
        let response = send(&service, Some(&format!("sessionid={}", keys[0]))).await;
        assert_eq!(response.status(), StatusCode::OK);
        failing
            .fail_saves
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let response = send(&service, Some(&format!("sessionid={}", keys[0]))).await;
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        if let Some(failure) = response
            .extensions()
            .get::<session_middleware::SessionFailure>()
        {
            out.debug("failure", failure);
            out.error("failure error", failure.error());
        }
        failing
            .fail_saves
            .store(false, std::sync::atomic::Ordering::SeqCst);
        failing
            .fail_loads
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let response = send(&service, Some(&format!("sessionid={}", keys[0]))).await;
        if let Some(failure) = response
            .extensions()
            .get::<session_middleware::SessionFailure>()
        {
            out.error("load failure", failure.error());
        }
        let cookie_app = app(
            &layer(cookies.clone(), config.clone()),
            |session| async move {
                let _ = session.len().await;
                ok()
            },
        );
        let _ = send(&cookie_app, Some(&format!("sessionid={forged}"))).await;
        let _ = send(&cookie_app, Some(&format!("sessionid={}", token.as_str()))).await;
    });
    drop(runtime);

    let logs = all_threads.lines();
    assert!(
        logs.iter().any(|l| l.contains("Session data corrupted")),
        "the refusals were logged (the capture works): {logs:#?}"
    );
    assert!(
        logs.iter().any(|l| l.contains("replaced with a 500")),
        "the store failure was logged: {logs:#?}"
    );
    let secrets = [PRIMARY, FALLBACK];
    for line in out.0.iter().chain(&logs) {
        for secret in secrets {
            assert!(!line.contains(secret), "a secret leaked: {line}");
        }
        for key in &keys {
            assert!(!line.contains(key.as_str()), "a session key leaked: {line}");
        }
    }
}
