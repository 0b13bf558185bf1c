//! The suite against the in-process `MemoryStore`.

use conformance_tests::session_conformance;
use session_core::MemoryStore;

session_conformance!(memory, async { MemoryStore::new() });
