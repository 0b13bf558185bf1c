//! The suite against the in-process `MemoryStore`.

use session_conformance::session_conformance;
use session_core::MemoryStore;

session_conformance!(memory, async { MemoryStore::new() });
