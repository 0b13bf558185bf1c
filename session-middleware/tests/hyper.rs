//! The layer serving real HTTP/1.1 over a loopback socket with plain hyper 1 (no framework): the
//! request body is hyper's `Incoming`, passed through untouched.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use http::header::{COOKIE, SET_COOKIE, VARY};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use session_core::Session;
use tokio::net::{TcpListener, TcpStream};
use tower::{Layer, service_fn};

/// Appends the request body to a list kept in the session and answers with the list.
async fn notes(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let session = request.extensions().get::<Session>().unwrap().clone();
    let note = request.into_body().collect().await.unwrap().to_bytes();
    let mut notes: Vec<String> = session.get("notes").await.unwrap().unwrap_or_default();
    notes.push(String::from_utf8(note.to_vec()).unwrap());
    session.insert("notes", &notes).await.unwrap();
    Ok(Response::new(Full::new(Bytes::from(notes.join(",")))))
}

#[tokio::test]
async fn a_hyper_server_keeps_a_session_across_requests_on_one_connection() {
    let store = Arc::new(InstrumentedStore::default());
    let service = layer(store.clone(), config()).layer(service_fn(notes));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
            .await
            .unwrap();
    });

    let stream = TcpStream::connect(address).await.unwrap();
    let (mut client, connection) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);

    let mut cookie: Option<String> = None;
    for (note, expected) in [("first", "first"), ("second", "first,second")] {
        let mut request = Request::post("/notes");
        if let Some(cookie) = &cookie {
            request = request.header(COOKIE, cookie);
        }
        let response = client
            .send_request(request.body(Full::new(Bytes::from(note))).unwrap())
            .await
            .unwrap();
        assert_eq!(response.headers()[VARY], "Cookie");
        let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        let key = cookie_value(&set_cookie);
        assert_generated(&key);
        if let Some(cookie) = &cookie {
            assert_eq!(cookie, &format!("sessionid={key}"), "the same session");
        }
        cookie = Some(format!("sessionid={key}"));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, expected);
    }
    drop(client);
    connection.await.unwrap().unwrap();
    server.await.unwrap();
    assert_eq!(store.inner.len(), 1);
}
