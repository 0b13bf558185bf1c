//! Django's session behaviours (the shared conformance suite) on every database, with Django's
//! model and with its test suite's custom model (`CustomDatabaseSessionTests`: an `account_id`
//! column and a cookie age of 86400).

mod common;

use common::{CustomSession, Db, custom_config, fixture};
use session_conformance::{config, session_conformance};
use session_db::DjangoSession;

session_conformance!(sqlite, async {
    fixture::<sqlx::Sqlite, _>(Db::Sqlite, DjangoSession, config()).await
});

session_conformance!(sqlite_custom, async {
    fixture::<sqlx::Sqlite, _>(Db::Sqlite, CustomSession, custom_config()).await
});

#[cfg(feature = "postgres")]
session_conformance!(postgres, async {
    fixture::<sqlx::Postgres, _>(Db::Postgres, DjangoSession, config()).await
});

#[cfg(feature = "postgres")]
session_conformance!(postgres_custom, async {
    fixture::<sqlx::Postgres, _>(Db::Postgres, CustomSession, custom_config()).await
});

#[cfg(feature = "mysql")]
session_conformance!(mysql, async {
    fixture::<sqlx::MySql, _>(Db::MySql, DjangoSession, config()).await
});

#[cfg(feature = "mysql")]
session_conformance!(mysql_custom, async {
    fixture::<sqlx::MySql, _>(Db::MySql, CustomSession, custom_config()).await
});
