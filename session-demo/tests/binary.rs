//! The `session-demo` binary itself: the secret rule, and the startup line scripts rely on.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

fn demo(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_session-demo"));
    command
        .args(args)
        .env_remove("SECRET_KEY")
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn without_a_secret_the_demo_refuses_to_start_and_says_how_to_fix_it() {
    let output = demo(&["--store", "memory"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(output.stdout, b"");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with("session-demo: no secret key: set SECRET_KEY"),
        "{stderr}"
    );
    assert!(stderr.contains("--insecure-dev-secret"), "{stderr}");
}

#[test]
fn with_the_development_secret_it_warns_serves_and_prints_its_address() {
    let mut child = demo(&[
        "--insecure-dev-secret",
        "--store",
        "memory",
        "--listen",
        "127.0.0.1:0",
    ])
    .spawn()
    .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let server = Server(child);

    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let prefix = "session-demo: serving http://127.0.0.1:";
    assert!(line.starts_with(prefix), "{line:?}");
    assert!(
        line.ends_with("/ with sessions in in-process memory (lost on restart)\n"),
        "{line:?}"
    );
    let port: u16 = line[prefix.len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    let mut connection = TcpStream::connect(("127.0.0.1", port)).unwrap();
    connection
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    connection.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    assert!(response.ends_with("\r\n\r\nok"), "{response}");

    drop(server);
    let mut warnings = String::new();
    stderr.read_to_string(&mut warnings).unwrap();
    assert!(
        warnings.contains("WARNING: signing sessions with the public development secret"),
        "{warnings}"
    );
}

#[test]
fn an_empty_secret_key_is_refused() {
    let output = demo(&["--store", "memory"])
        .env("SECRET_KEY", "")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(output.stderr).unwrap(),
        "session-demo: SECRET_KEY is empty: set it to a long random string\n"
    );
}

/// Sends one request on a fresh connection and returns the whole response.
fn request(port: u16, request: &str) -> String {
    let mut connection = TcpStream::connect(("127.0.0.1", port)).unwrap();
    connection.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    connection.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn with_metrics_it_serves_the_store_counters_and_latency_histogram_as_prometheus_text() {
    let mut child = demo(&["--store", "memory", "--listen", "127.0.0.1:0", "--metrics"])
        .env("SECRET_KEY", "metrics test secret")
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let _server = Server(child);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let port: u16 = line["session-demo: serving http://127.0.0.1:".len()..]
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    // One visit creates the session; two more load and save it.
    let first = request(
        port,
        "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    let cookie = first
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        let response = request(
            port,
            &format!(
                "GET / HTTP/1.1\r\nHost: localhost\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
            ),
        );
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    }
    let metrics = request(
        port,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(metrics.starts_with("HTTP/1.1 200 OK"), "{metrics}");
    assert!(
        !metrics.to_ascii_lowercase().contains("set-cookie"),
        "a scrape has no session"
    );
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
    };
    assert_eq!(
        value(r#"djsession_store_operations_total{store="memory",operation="load"}"#),
        2.0
    );
    assert_eq!(
        value(r#"djsession_store_operations_total{store="memory",operation="save"}"#),
        3.0
    );
    assert_eq!(
        value(r#"djsession_sessions_created_total{store="memory"}"#),
        1.0
    );
    assert_eq!(
        value(
            r#"djsession_store_operation_duration_seconds_count{store="memory",operation="save"}"#
        ),
        3.0
    );
    assert!(
        metrics.contains(
            r#"djsession_store_operation_duration_seconds_bucket{store="memory",operation="load",le="0.001"}"#
        ),
        "{metrics}"
    );
}
