//! The `session-demo` binary: parse the options, open the store, serve.

use std::process::ExitCode;

use clap::Parser;
use session_demo::{DemoError, Options, SecretSource, app_with_metrics, install_metrics, stores};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    match run(Options::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("session-demo: {error}");
            ExitCode::from(2)
        }
    }
}

async fn run(options: Options) -> Result<(), DemoError> {
    let (config, source) = options.session_config()?;
    if source == SecretSource::InsecureDevelopment {
        eprintln!(
            "session-demo: WARNING: signing sessions with the public development secret \
             (--insecure-dev-secret); anyone can forge them. Set SECRET_KEY outside development."
        );
    }
    let store = stores::open(&options, &config).await?;
    let description = store.description.clone();
    let metrics = if options.metrics {
        Some(install_metrics()?)
    } else {
        None
    };
    let router = app_with_metrics(store, config, metrics)?;

    let serve_error = |source| DemoError::Serve {
        addr: options.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(serve_error)?;
    let addr = listener.local_addr().map_err(serve_error)?;
    // Scripts (.ci/e2e) read this line to find the port when started with --listen ...:0.
    println!("session-demo: serving http://{addr}/ with sessions in {description}");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(serve_error)
}

/// Resolves on Ctrl-C or SIGTERM, so requests in flight finish and their sessions are saved.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
