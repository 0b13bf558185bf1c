//! Memcached's text protocol over one TCP connection: the few commands sessions need, every reply
//! read with bounds (header lines and values), every reply checked.
//!
//! Commands are always sent with replies on (never `noreply`), so every failure is seen.

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

use super::MemcachedError;

/// The longest reply line accepted (a `VALUE` header is at most ~300 bytes: a 250-byte key and
/// three numbers; error lines are short).
const MAX_LINE: u64 = 1024;

/// A value read from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) flags: u32,
    pub(crate) data: Bytes,
    /// Present when fetched with `gets`.
    pub(crate) cas: Option<u64>,
}

/// A storage command's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreReply {
    Stored,
    NotStored,
    /// `cas`: the item changed since it was read.
    Exists,
    /// `cas`: the item is gone.
    NotFound,
}

/// The storage commands used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoreCommand {
    Set,
    Add,
    Replace,
    Cas(u64),
}

/// One request, for [`Connection::execute`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Request<'a> {
    Get {
        key: &'a str,
        with_cas: bool,
    },
    Store {
        command: StoreCommand,
        key: &'a str,
        flags: u32,
        exptime: i64,
        data: &'a [u8],
    },
    Delete {
        key: &'a str,
    },
    Version,
}

/// The reply to a [`Request`] of the same kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Response {
    Item(Option<Item>),
    Stored(StoreReply),
    Deleted(bool),
    Version(String),
}

/// One open connection. Any error leaves it in an unknown state: callers drop it.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: BufStream<TcpStream>,
    max_value_size: usize,
}

impl Connection {
    pub(crate) async fn open(address: &str, max_value_size: usize) -> Result<Self, MemcachedError> {
        let stream = TcpStream::connect(address).await?;
        // Requests are small and answered one at a time: do not wait to fill packets.
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream: BufStream::new(stream),
            max_value_size,
        })
    }

    /// Sends `request` and reads its reply.
    pub(crate) async fn execute(
        &mut self,
        request: Request<'_>,
    ) -> Result<Response, MemcachedError> {
        Ok(match request {
            Request::Get { key, with_cas } => Response::Item(self.get(key, with_cas).await?),
            Request::Store {
                command,
                key,
                flags,
                exptime,
                data,
            } => Response::Stored(self.store(command, key, flags, exptime, data).await?),
            Request::Delete { key } => Response::Deleted(self.delete(key).await?),
            Request::Version => Response::Version(self.version().await?),
        })
    }

    /// `get`/`gets` of one key.
    async fn get(&mut self, key: &str, with_cas: bool) -> Result<Option<Item>, MemcachedError> {
        let command = if with_cas { "gets" } else { "get" };
        self.send(&[command.as_bytes(), b" ", key.as_bytes(), b"\r\n"])
            .await?;
        let line = self.read_line().await?;
        if line == "END" {
            return Ok(None);
        }
        let item = self.read_value(&line, key, with_cas).await?;
        let end = self.read_line().await?;
        if end != "END" {
            return Err(MemcachedError::protocol(format!(
                "expected END after the value of {key:?}, got {end:?}"
            )));
        }
        Ok(Some(item))
    }

    /// `set`/`add`/`replace`/`cas`.
    async fn store(
        &mut self,
        command: StoreCommand,
        key: &str,
        flags: u32,
        exptime: i64,
        data: &[u8],
    ) -> Result<StoreReply, MemcachedError> {
        let (name, cas) = match command {
            StoreCommand::Set => ("set", None),
            StoreCommand::Add => ("add", None),
            StoreCommand::Replace => ("replace", None),
            StoreCommand::Cas(unique) => ("cas", Some(unique)),
        };
        let mut header = format!("{name} {key} {flags} {exptime} {}", data.len());
        if let Some(unique) = cas {
            header.push(' ');
            header.push_str(&unique.to_string());
        }
        header.push_str("\r\n");
        self.send(&[header.as_bytes(), data, b"\r\n"]).await?;
        let line = self.read_line().await?;
        match line.as_str() {
            "STORED" => Ok(StoreReply::Stored),
            "NOT_STORED" => Ok(StoreReply::NotStored),
            "EXISTS" if cas.is_some() => Ok(StoreReply::Exists),
            "NOT_FOUND" if cas.is_some() => Ok(StoreReply::NotFound),
            _ => Err(unexpected(name, &line)),
        }
    }

    /// `delete`; `true` when the key was there.
    async fn delete(&mut self, key: &str) -> Result<bool, MemcachedError> {
        self.send(&[b"delete ", key.as_bytes(), b"\r\n"]).await?;
        let line = self.read_line().await?;
        match line.as_str() {
            "DELETED" => Ok(true),
            "NOT_FOUND" => Ok(false),
            _ => Err(unexpected("delete", &line)),
        }
    }

    /// `version`: a cheap round trip proving the server answers.
    async fn version(&mut self) -> Result<String, MemcachedError> {
        self.send(&[b"version\r\n"]).await?;
        let line = self.read_line().await?;
        match line.strip_prefix("VERSION ") {
            Some(version) => Ok(version.to_owned()),
            None => Err(unexpected("version", &line)),
        }
    }

    async fn send(&mut self, parts: &[&[u8]]) -> Result<(), MemcachedError> {
        for part in parts {
            self.stream.write_all(part).await?;
        }
        self.stream.flush().await?;
        Ok(())
    }

    /// One `\r\n`-terminated line, without its terminator, at most [`MAX_LINE`] bytes.
    async fn read_line(&mut self) -> Result<String, MemcachedError> {
        let mut line = Vec::new();
        let read = (&mut self.stream)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await?;
        if read == 0 {
            return Err(MemcachedError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )));
        }
        if !line.ends_with(b"\r\n") {
            return Err(MemcachedError::protocol(format!(
                "a reply line longer than {MAX_LINE} bytes or without CRLF: {:?}",
                String::from_utf8_lossy(&line)
            )));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line)
            .map_err(|e| MemcachedError::protocol(format!("a reply line that is not UTF-8: {e}")))
    }

    /// The data block announced by a `VALUE <key> <flags> <bytes> [<cas>]` line.
    async fn read_value(
        &mut self,
        header: &str,
        key: &str,
        with_cas: bool,
    ) -> Result<Item, MemcachedError> {
        let mut fields = header.split(' ');
        let bad =
            || MemcachedError::protocol(format!("unexpected reply to get {key:?}: {header:?}"));
        if fields.next() != Some("VALUE") {
            return Err(unexpected("get", header));
        }
        if fields.next() != Some(key) {
            return Err(bad());
        }
        let flags: u32 = fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?;
        let length: usize = fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?;
        let cas = if with_cas {
            Some(fields.next().and_then(|f| f.parse().ok()).ok_or_else(bad)?)
        } else {
            None
        };
        if fields.next().is_some() {
            return Err(bad());
        }
        if length > self.max_value_size {
            return Err(MemcachedError::ValueTooLarge {
                size: length,
                limit: self.max_value_size,
            });
        }
        let mut data = vec![0; length + 2];
        self.stream.read_exact(&mut data).await?;
        if !data.ends_with(b"\r\n") {
            return Err(MemcachedError::protocol(format!(
                "the value of {key:?} is not followed by CRLF"
            )));
        }
        data.truncate(length);
        Ok(Item {
            flags,
            data: Bytes::from(data),
            cas,
        })
    }
}

/// An error reply (`ERROR`, `CLIENT_ERROR …`, `SERVER_ERROR …`) or anything else unexpected.
fn unexpected(command: &str, line: &str) -> MemcachedError {
    if line == "ERROR" || line.starts_with("CLIENT_ERROR") || line.starts_with("SERVER_ERROR") {
        MemcachedError::Server {
            command: command.to_owned(),
            reply: line.to_owned(),
        }
    } else {
        MemcachedError::protocol(format!("unexpected reply to {command}: {line:?}"))
    }
}
