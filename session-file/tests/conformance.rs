//! Django's session behaviours (the shared conformance suite) against the file store, once per
//! write strategy, each behaviour in a fresh temporary directory.

mod common;

use common::TempStore;
use session_conformance::session_conformance;
use session_file::WriteStrategy;

session_conformance!(file_rename_exchange, async {
    TempStore::new(
        &session_conformance::config(),
        Some(WriteStrategy::RenameExchange),
    )
    .await
});

session_conformance!(file_hard_link, async {
    TempStore::new(
        &session_conformance::config(),
        Some(WriteStrategy::HardLink),
    )
    .await
});

session_conformance!(file_placeholder, async {
    TempStore::new(
        &session_conformance::config(),
        Some(WriteStrategy::Placeholder),
    )
    .await
});
