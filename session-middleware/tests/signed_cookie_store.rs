//! The layer over the real signed-cookie store (`session-cookie`), unchanged: the session key is the
//! cookie value.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::*;
use http::StatusCode;
use session_cookie::CookieStore;
use session_middleware::SessionFailure;

fn store() -> Arc<CookieStore> {
    Arc::new(CookieStore::new(&config()).unwrap())
}

#[tokio::test]
async fn the_cookie_carries_the_signed_data_and_comes_back() {
    let layer = layer(store(), config());
    let write = app(&layer, |session| async move {
        session.insert("hello", "world").await.unwrap();
        ok()
    });
    let response = send(&write, None).await;
    let set_cookie = the_set_cookie(&response);
    // `{"hello":"world"}`, signed now; the attributes are Django's (clock frozen in the layer).
    assert!(
        set_cookie.starts_with("Set-Cookie: sessionid=eyJoZWxsbyI6IndvcmxkIn0:"),
        "{set_cookie}"
    );
    assert!(set_cookie.ends_with(
        "; expires=Tue, 28 Nov 2023 22:13:20 GMT; HttpOnly; Max-Age=1209600; Path=/; SameSite=Lax"
    ));
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));
    let cookie = format!("sessionid={}", cookie_value(&set_cookie));

    // Reading it back re-signs nothing.
    let read = app(&layer, |session| async move {
        assert_eq!(
            session.get::<String>("hello").await.unwrap().as_deref(),
            Some("world")
        );
        ok()
    });
    let response = send(&read, Some(&cookie)).await;
    assert!(set_cookies(&response).is_empty());
    assert_eq!(vary(&response).as_deref(), Some("Cookie"));

    // Logging out deletes the cookie.
    let logout = app(&layer, |session| async move {
        session.flush().await.unwrap();
        ok()
    });
    let response = send(&logout, Some(&cookie)).await;
    assert_eq!(
        the_set_cookie(&response),
        "Set-Cookie: sessionid=\"\"; expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/; SameSite=Lax"
    );
}

#[tokio::test]
async fn a_forged_cookie_that_is_read_is_replaced_by_a_fresh_empty_one() {
    let layer = layer(store(), config());
    let read = app(&layer, |session| async move {
        assert_eq!(session.get::<String>("hello").await.unwrap(), None);
        ok()
    });
    let response = send(
        &read,
        Some("sessionid=eyJoZWxsbyI6ImV2aWwifQ:1r31eq:forged"),
    )
    .await;
    let value = cookie_value(&the_set_cookie(&response));
    assert!(value.starts_with("e30:"), "{{}} signed: {value}");
}

#[tokio::test]
async fn a_session_too_big_for_a_cookie_is_a_500_without_a_cookie() {
    let layer = layer(store(), config());
    let big = app(&layer, |session| async move {
        // Pseudo-random text: incompressible enough to exceed 4096 bytes once signed.
        let mut state = 0x9e37_79b9_u32;
        let noise: String = (0..6000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                char::from(b'!' + (state % 90) as u8)
            })
            .collect();
        session.insert("noise", &noise).await.unwrap();
        ok()
    });
    let response = send(&big, None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(set_cookies(&response).is_empty());
    let failure = response.extensions().get::<SessionFailure>().unwrap();
    assert!(
        failure.error().to_string().contains("4096"),
        "{}",
        failure.error()
    );
}
