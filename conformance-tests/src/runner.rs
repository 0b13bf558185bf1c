//! Running behaviours and reporting their outcomes.

use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::time::Duration;

use crate::behaviours::ALL;
use crate::fixture::Fixture;
use crate::services;

/// How long one behaviour may take before it counts as hung.
const BEHAVIOUR_TIMEOUT: Duration = Duration::from_secs(120);

/// How a behaviour ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every assertion held.
    Passed,
    /// The behaviour does not apply to this store; the reason says why.
    Skipped(String),
    /// The store differs from Django's database backend here on purpose, as Django's own backend of
    /// that kind does; the documented behaviour was checked instead.
    ExpectedDifference(String),
}

/// A behaviour that did not hold: what was expected, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    message: String,
    location: String,
}

impl Failure {
    /// A failure at the caller's location.
    #[track_caller]
    pub fn new(message: impl Into<String>) -> Self {
        let at = Location::caller();
        Failure {
            message: message.into(),
            location: format!("{}:{}", at.file(), at.line()),
        }
    }

    /// What was expected.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at {})", self.message, self.location)
    }
}

impl From<session_core::Error> for Failure {
    #[track_caller]
    fn from(error: session_core::Error) -> Self {
        Failure::new(format!("unexpected error: {error}"))
    }
}

/// The outcome of every behaviour, by name.
#[derive(Debug, Default)]
pub struct Report {
    /// `(behaviour, outcome)` in suite order.
    pub outcomes: Vec<(&'static str, Result<Outcome, Failure>)>,
}

impl Report {
    /// The names of the behaviours that failed.
    pub fn failed(&self) -> Vec<&'static str> {
        self.outcomes
            .iter()
            .filter(|(_, outcome)| outcome.is_err())
            .map(|(name, _)| *name)
            .collect()
    }

    /// The outcome of one behaviour.
    pub fn outcome(&self, name: &str) -> Option<&Result<Outcome, Failure>> {
        self.outcomes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, outcome)| outcome)
    }
}

/// Runs one behaviour against a fresh fixture, on its own runtime, and panics if it fails (this is
/// what each generated `#[test]` calls).
pub fn run<F, Fut>(name: &str, factory: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Fixture>,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => panic!("could not start a tokio runtime: {error}"),
    };
    let outcome = runtime.block_on(async {
        let fixture = factory().await;
        run_one(name, fixture).await
    });
    match outcome {
        Ok(Outcome::Passed) => {}
        Ok(Outcome::Skipped(reason)) => println!("skipped {name}: {reason}"),
        Ok(Outcome::ExpectedDifference(reason)) => {
            println!("expected difference in {name}: {reason}")
        }
        Err(failure) => panic!("behaviour {name} failed: {failure}"),
    }
}

async fn run_one(name: &str, fixture: Fixture) -> Result<Outcome, Failure> {
    let harness = match fixture.setup {
        Ok(harness) => harness,
        Err(reason) if services::required() => {
            return Err(Failure::new(format!(
                "SESSION_TEST_REQUIRE_SERVICES is set but the store could not be set up: {reason}"
            )));
        }
        Err(reason) => return Ok(Outcome::Skipped(reason)),
    };
    let Some((_, behaviour)) = ALL.iter().find(|(n, _)| *n == name) else {
        return Err(Failure::new(format!("no behaviour named {name}")));
    };
    match tokio::time::timeout(BEHAVIOUR_TIMEOUT, behaviour(*harness)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Failure::new(format!(
            "did not finish within {BEHAVIOUR_TIMEOUT:?}"
        ))),
    }
}

/// Runs every behaviour, each against a fresh fixture from `factory`, and reports them all (the
/// suite's own tests use it to prove that broken stores fail).
pub async fn run_all_with<F, Fut>(factory: F) -> Report
where
    F: Fn() -> Fut,
    Fut: Future<Output = Fixture>,
{
    let mut report = Report::default();
    for (name, _) in ALL {
        let outcome = run_one(name, factory().await).await;
        report.outcomes.push((name, outcome));
    }
    report
}

/// [`run_all_with`] for a factory of stores.
pub async fn run_all<F, Fut, S>(factory: F) -> Report
where
    F: Fn() -> Fut,
    Fut: Future<Output = S>,
    S: Into<Fixture>,
{
    run_all_with(|| {
        let store = factory();
        async move { store.await.into() }
    })
    .await
}
