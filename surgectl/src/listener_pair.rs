//! A process's two listening sockets (gRPC and HTTP), bound here on a loopback port the OS
//! chooses and handed to the process as it starts: socket activation, in the convention
//! `surge_server::listeners` takes them in (fd 3 `grpc_listen`, fd 4 `http_listen`,
//! `LISTEN_FDS` and `LISTEN_FDNAMES`).
//!
//! The port is bound from the moment it is chosen until the process serves it, so no other
//! program can take it in between, and its number can go into every config before anything
//! starts. The parent closes its copies once the child has them ([`ListenerPair::hand_to`]
//! moves them into the `Command`, which closes them when dropped), so a restarted process can
//! bind the same port again.

use std::io;
use std::net::TcpListener;
use std::process::Command;

use command_fds::{CommandFdExt, FdMapping};

/// The environment variables of socket activation that a child must not inherit by accident.
pub const ACTIVATION_VARS: [&str; 3] = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

/// Bound gRPC and HTTP listeners, not yet handed to their process.
#[derive(Debug)]
pub struct ListenerPair {
    pub grpc: TcpListener,
    pub http: TcpListener,
}

impl ListenerPair {
    /// Two listeners on 127.0.0.1, on ports the OS chooses. They are what the process's own
    /// bind would give it (tokio's, like std's: `SO_REUSEADDR`, a backlog of 128).
    pub fn bind_loopback() -> io::Result<ListenerPair> {
        Ok(ListenerPair {
            grpc: TcpListener::bind("127.0.0.1:0")?,
            http: TcpListener::bind("127.0.0.1:0")?,
        })
    }

    /// `host:port` of the gRPC listener.
    pub fn grpc_address(&self) -> io::Result<String> {
        self.grpc.local_addr().map(|a| a.to_string())
    }

    /// `host:port` of the HTTP listener.
    pub fn http_address(&self) -> io::Result<String> {
        self.http.local_addr().map(|a| a.to_string())
    }

    /// Makes `command` start its process with these listeners as fds 3 and 4. `LISTEN_PID`
    /// stays unset: the child's pid is not known before it exists.
    pub fn hand_to(self, command: &mut Command) -> io::Result<()> {
        command
            .env("LISTEN_FDS", "2")
            .env("LISTEN_FDNAMES", "grpc_listen:http_listen")
            .env_remove("LISTEN_PID");
        command
            .fd_mappings(vec![
                FdMapping {
                    parent_fd: self.grpc.into(),
                    child_fd: 3,
                },
                FdMapping {
                    parent_fd: self.http.into(),
                    child_fd: 4,
                },
            ])
            .map_err(io::Error::other)?;
        Ok(())
    }
}
