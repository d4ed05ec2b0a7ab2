//! A process's three listening sockets (client gRPC, HTTP, peer gRPC), bound here on loopback
//! ports the OS chooses and handed to the process as it starts: socket activation, in the
//! convention `surge_server::listeners` takes them in (fd 3 `grpc_listen`, fd 4 `http_listen`,
//! fd 5 `peer_listen`, `LISTEN_FDS` and `LISTEN_FDNAMES`).
//!
//! The ports are bound from the moment they are chosen until the process serves them, so no
//! other program can take one in between, and their numbers can go into every config before
//! anything starts. The parent closes its copies once the child has them
//! ([`HeldListeners::hand_to`] moves them into the `Command`, which closes them when dropped),
//! so a restarted process can bind the same ports again.

use std::io;
use std::net::TcpListener;
use std::process::Command;

use command_fds::{CommandFdExt, FdMapping};

/// The environment variables of socket activation that a child must not inherit by accident.
pub const ACTIVATION_VARS: [&str; 3] = ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"];

/// Bound listeners, not yet handed to their process.
#[derive(Debug)]
pub struct HeldListeners {
    pub grpc: TcpListener,
    pub http: TcpListener,
    pub peer: TcpListener,
}

fn address(listener: &TcpListener) -> io::Result<String> {
    listener.local_addr().map(|a| a.to_string())
}

impl HeldListeners {
    /// Three listeners on 127.0.0.1, on ports the OS chooses. They are what the process's
    /// own bind would give it (tokio's, like std's: `SO_REUSEADDR`, a backlog of 128).
    pub fn bind_loopback() -> io::Result<HeldListeners> {
        Ok(HeldListeners {
            grpc: TcpListener::bind("127.0.0.1:0")?,
            http: TcpListener::bind("127.0.0.1:0")?,
            peer: TcpListener::bind("127.0.0.1:0")?,
        })
    }

    /// `host:port` of the client gRPC listener.
    pub fn grpc_address(&self) -> io::Result<String> {
        address(&self.grpc)
    }

    /// `host:port` of the HTTP listener.
    pub fn http_address(&self) -> io::Result<String> {
        address(&self.http)
    }

    /// `host:port` of the peer gRPC listener.
    pub fn peer_address(&self) -> io::Result<String> {
        address(&self.peer)
    }

    /// Makes `command` start its process with these listeners as fds 3, 4 and 5.
    /// `LISTEN_PID` stays unset: the child's pid is not known before it exists.
    pub fn hand_to(self, command: &mut Command) -> io::Result<()> {
        command
            .env("LISTEN_FDS", "3")
            .env("LISTEN_FDNAMES", "grpc_listen:http_listen:peer_listen")
            .env_remove("LISTEN_PID");
        let mappings = [(self.grpc, 3), (self.http, 4), (self.peer, 5)]
            .into_iter()
            .map(|(listener, child_fd)| FdMapping {
                parent_fd: listener.into(),
                child_fd,
            })
            .collect();
        command.fd_mappings(mappings).map_err(io::Error::other)?;
        Ok(())
    }
}
