//! Redis behind Sentinel: the master is looked up through the sentinels, and looked up again
//! after any failure, so the cache follows a failover.

use std::sync::RwLock;

use redis::aio::MultiplexedConnection;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, FromRedisValue, Pipeline, RedisResult, ServerErrorKind,
};

/// The master of a Sentinel-monitored group, through one multiplexed connection that is
/// replaced whenever a command fails.
///
/// A failed command (connection refused or dropped, timeout, `READONLY` from a demoted master)
/// forgets the connection, and the next command asks the sentinels for the master again (the
/// redis crate checks the answer with `ROLE`), so calls fail only while the group has no
/// reachable master. Lookups are serialized, so a burst of failures triggers one lookup at a
/// time, not one per caller.
pub(crate) struct SentinelConnection {
    client: tokio::sync::Mutex<SentinelClient>,
    current: RwLock<Option<MultiplexedConnection>>,
    config: AsyncConnectionConfig,
}

impl SentinelConnection {
    pub(crate) async fn connect(
        sentinels: &[String],
        master: &str,
        config: AsyncConnectionConfig,
    ) -> RedisResult<Self> {
        let client = SentinelClient::build(
            sentinels.to_vec(),
            master.to_owned(),
            None,
            SentinelServerType::Master,
        )?;
        let connection = SentinelConnection {
            client: tokio::sync::Mutex::new(client),
            current: RwLock::new(None),
            config,
        };
        // Fail now, not on first use, if no master can be found.
        connection.connection().await?;
        Ok(connection)
    }

    fn cached(&self) -> Option<MultiplexedConnection> {
        self.current.read().ok().and_then(|c| c.clone())
    }

    fn forget(&self) {
        if let Ok(mut current) = self.current.write() {
            *current = None;
        }
    }

    async fn connection(&self) -> RedisResult<MultiplexedConnection> {
        if let Some(connection) = self.cached() {
            return Ok(connection);
        }
        let mut client = self.client.lock().await;
        // Another caller may have found the master while this one waited.
        if let Some(connection) = self.cached() {
            return Ok(connection);
        }
        let connection = client
            .get_async_connection_with_config(&self.config)
            .await?;
        if let Ok(mut current) = self.current.write() {
            *current = Some(connection.clone());
        }
        Ok(connection)
    }

    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        let mut connection = self.connection().await?;
        let result = cmd.query_async(&mut connection).await;
        self.after(result)
    }

    pub(crate) async fn query_pipeline<T: FromRedisValue>(
        &self,
        pipeline: &Pipeline,
    ) -> RedisResult<T> {
        let mut connection = self.connection().await?;
        let result = pipeline.query_async(&mut connection).await;
        self.after(result)
    }

    fn after<T>(&self, result: RedisResult<T>) -> RedisResult<T> {
        match &result {
            // The master does not hold a script yet: it answered, so it is the master still, and
            // the caller sends the script's source next.
            Err(error) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {}
            // Whatever else failed, the next command starts from a fresh lookup: a stale master
            // answers READONLY or not at all, and a lookup is cheap next to a lost write.
            Err(_) => self.forget(),
            Ok(_) => {}
        }
        result
    }
}
