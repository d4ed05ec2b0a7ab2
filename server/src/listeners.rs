//! The listening sockets a process serves on: handed over by the program that started it, or
//! bound here to the configured address.
//!
//! Handing over is socket activation in systemd's convention: the sockets arrive as fds 3,
//! 4, ..., `LISTEN_FDS` says how many, and `LISTEN_FDNAMES` (colon-separated) may name them
//! by config key (`grpc_listen:http_listen:peer_listen`); unnamed, they go by position. `surgectl dev up
//! --base-port 0` binds every port this way before any process starts, so each port is known
//! to the peers and is never free for another program to take. A later start from the same
//! config, with no sockets handed over, binds the same address by number.
//!
//! `LISTEN_PID` may be absent: systemd sets it to the child's pid, which a parent cannot do
//! before exec without `unsafe` code, and `listenfd` takes the fds when it is absent or
//! empty (and refuses them when it names another process). `listenfd` removes `LISTEN_FDS`
//! and `LISTEN_PID` from the environment as it reads them, so no process this one starts
//! takes the sockets for its own.

use std::net::SocketAddr;

use tokio::net::TcpListener;

/// A listener that could not be taken over or bound, naming its config key.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{key}: cannot bind {address}: {error}")]
    Bind {
        key: String,
        address: String,
        error: std::io::Error,
    },
    #[error("{key}: the socket handed over as fd {fd} cannot serve: {error}")]
    Inherited {
        key: String,
        fd: usize,
        error: std::io::Error,
    },
    #[error("{key}: the socket handed over listens on {actual}, not on {address}")]
    Elsewhere {
        key: String,
        address: String,
        actual: SocketAddr,
    },
}

/// The sockets handed to this process, taken one by one.
pub struct Listeners {
    fds: listenfd::ListenFd,
    names: Option<Vec<String>>,
}

impl Listeners {
    /// Reads the handed-over sockets from the environment. Call it once, first thing in
    /// `main`: it removes the variables it reads.
    pub fn from_env() -> Listeners {
        let names = std::env::var("LISTEN_FDNAMES").ok();
        let fds = listenfd::ListenFd::from_env();
        let names = names
            .map(|n| n.split(':').map(str::to_string).collect::<Vec<_>>())
            .filter(|n| n.len() == fds.len());
        Listeners { fds, names }
    }

    /// The listener for config key `key` at `address`: the socket handed over for it (by
    /// name, or else the one at `position`), or a new one bound to `address`. A handed-over
    /// socket must listen on `address` unless `address` leaves the port to the OS.
    pub async fn take_or_bind(
        &mut self,
        key: &str,
        position: usize,
        address: &str,
    ) -> Result<TcpListener, ListenError> {
        let Some(index) = slot(key, position, self.names.as_deref(), self.fds.len()) else {
            return bind(key, address).await;
        };
        let inherited = |error| ListenError::Inherited {
            key: key.into(),
            fd: 3 + index,
            error,
        };
        let Some(std) = self.fds.take_tcp_listener(index).map_err(inherited)? else {
            return bind(key, address).await;
        };
        std.set_nonblocking(true).map_err(inherited)?;
        let actual = std.local_addr().map_err(inherited)?;
        if let Ok(wanted) = address.parse::<SocketAddr>() {
            if wanted.port() != 0 && wanted != actual {
                return Err(ListenError::Elsewhere {
                    key: key.into(),
                    address: address.into(),
                    actual,
                });
            }
        }
        TcpListener::from_std(std).map_err(inherited)
    }

    /// The three listeners every process serves on, as `surgectl dev up` hands them over:
    /// `grpc_listen` (fd 3, the client port), `http_listen` (fd 4) and `peer_listen` (fd 5,
    /// the peer port).
    pub async fn take_all(&mut self, addresses: &ListenAddresses) -> Result<Bound, ListenError> {
        Ok(Bound {
            grpc: self.take_or_bind("grpc_listen", 0, &addresses.grpc).await?,
            http: self.take_or_bind("http_listen", 1, &addresses.http).await?,
            peer: self.take_or_bind("peer_listen", 2, &addresses.peer).await?,
        })
    }
}

/// Where a process listens, from its config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenAddresses {
    pub grpc: String,
    pub peer: String,
    pub http: String,
}

impl ListenAddresses {
    pub fn new(grpc: &str, peer: &str, http: &str) -> ListenAddresses {
        ListenAddresses {
            grpc: grpc.into(),
            peer: peer.into(),
            http: http.into(),
        }
    }
}

/// A process's listening sockets: the client port, the peer port and HTTP.
#[derive(Debug)]
pub struct Bound {
    pub grpc: TcpListener,
    pub peer: TcpListener,
    pub http: TcpListener,
}

async fn bind(key: &str, address: &str) -> Result<TcpListener, ListenError> {
    TcpListener::bind(address)
        .await
        .map_err(|error| ListenError::Bind {
            key: key.into(),
            address: address.into(),
            error,
        })
}

/// Which of `count` handed-over sockets serves `key`: the one named `key` when they are
/// named (none if no name matches), else the one at `position` if there is one.
fn slot(key: &str, position: usize, names: Option<&[String]>, count: usize) -> Option<usize> {
    match names {
        Some(names) => names.iter().position(|n| n == key),
        None => (position < count).then_some(position),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_are_found_by_name_then_by_position() {
        let names: Vec<String> = vec!["http_listen".into(), "grpc_listen".into()];
        assert_eq!(slot("grpc_listen", 0, Some(&names), 2), Some(1));
        assert_eq!(slot("http_listen", 1, Some(&names), 2), Some(0));
        assert_eq!(slot("other", 0, Some(&names), 2), None);
        assert_eq!(slot("grpc_listen", 0, None, 2), Some(0));
        assert_eq!(slot("http_listen", 1, None, 1), None);
        assert_eq!(slot("grpc_listen", 0, None, 0), None);
    }

    #[tokio::test]
    async fn a_bind_error_names_the_key_and_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = taken.local_addr().expect("addr").to_string();
        let err = bind("grpc_listen", &address)
            .await
            .expect_err("the port is taken");
        assert!(
            err.to_string()
                .starts_with(&format!("grpc_listen: cannot bind {address}: ")),
            "{err}"
        );
    }
}
