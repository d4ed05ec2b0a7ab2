//! Where a dev cluster's processes listen: on fixed ports from `--base-port` (coordinator `i`
//! on BASE+i-1, its HTTP on BASE+100+i-1, its peer port on BASE+400+i-1; node `n` on
//! BASE+200+n-1, BASE+300+n-1 and BASE+500+n-1), or,
//! with `--base-port 0`, on loopback ports the OS chooses, bound here and handed to each
//! process as it starts, so no other program can take one in between.

use anyhow::{bail, Context};
use surgectl::held_listeners::HeldListeners;

/// How a dev cluster's ports are chosen.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ports {
    /// From this base port on.
    Fixed(u16),
    /// By the OS, one by one.
    Chosen,
}

/// A process's client gRPC, HTTP and peer gRPC addresses, and when the OS chose them, the
/// listeners bound there for it to take over.
#[derive(Debug)]
pub(crate) struct Endpoints {
    pub(crate) grpc: String,
    pub(crate) http: String,
    pub(crate) peer: String,
    pub(crate) listeners: Option<HeldListeners>,
}

impl Ports {
    pub(crate) fn from_base(base: u16) -> Ports {
        match base {
            0 => Ports::Chosen,
            base => Ports::Fixed(base),
        }
    }

    pub(crate) fn base_port(self) -> u16 {
        match self {
            Ports::Fixed(base) => base,
            Ports::Chosen => 0,
        }
    }

    pub(crate) fn coordinator(self, id: u64) -> anyhow::Result<Endpoints> {
        if matches!(self, Ports::Fixed(_)) && id > 99 {
            bail!("a dev cluster on fixed ports has coordinator ids up to 99");
        }
        self.endpoints(id - 1, 100 + id - 1, 400 + id - 1)
    }

    pub(crate) fn node(self, n: u64) -> anyhow::Result<Endpoints> {
        if matches!(self, Ports::Fixed(_)) && n > 99 {
            bail!("a dev cluster on fixed ports has at most 99 nodes (--base-port 0 has no limit)");
        }
        self.endpoints(200 + n - 1, 300 + n - 1, 500 + n - 1)
    }

    fn endpoints(self, grpc: u64, http: u64, peer: u64) -> anyhow::Result<Endpoints> {
        match self {
            Ports::Fixed(base) => Ok(Endpoints {
                grpc: format!("127.0.0.1:{}", port(base, grpc)?),
                http: format!("127.0.0.1:{}", port(base, http)?),
                peer: format!("127.0.0.1:{}", port(base, peer)?),
                listeners: None,
            }),
            Ports::Chosen => {
                let listeners = HeldListeners::bind_loopback().context("binding 127.0.0.1:0")?;
                Ok(Endpoints {
                    grpc: listeners.grpc_address()?,
                    http: listeners.http_address()?,
                    peer: listeners.peer_address()?,
                    listeners: Some(listeners),
                })
            }
        }
    }
}

fn port(base: u16, offset: u64) -> anyhow::Result<u16> {
    u16::try_from(u64::from(base) + offset).context("base_port: the port range runs past 65535")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_ports_follow_the_base_and_chosen_ones_are_held() {
        let fixed = Ports::from_base(7001);
        let c = fixed.coordinator(2).expect("coordinator");
        let n = fixed.node(3).expect("node");
        assert_eq!(
            (c.grpc.as_str(), c.http.as_str(), c.peer.as_str()),
            ("127.0.0.1:7002", "127.0.0.1:7102", "127.0.0.1:7402")
        );
        assert_eq!(
            (n.grpc.as_str(), n.http.as_str(), n.peer.as_str()),
            ("127.0.0.1:7203", "127.0.0.1:7303", "127.0.0.1:7503")
        );
        assert!(c.listeners.is_none() && n.listeners.is_none());
        assert!(Ports::from_base(65_500).node(1).is_err(), "past 65535");

        let chosen = Ports::from_base(0).node(100).expect("no node limit");
        let held = chosen.listeners.as_ref().expect("held listeners");
        assert_eq!(chosen.grpc, held.grpc_address().expect("address"));
        assert_ne!(chosen.grpc, chosen.http);
        assert_ne!(chosen.grpc, chosen.peer);
        assert!(
            std::net::TcpListener::bind(&chosen.grpc).is_err(),
            "the chosen port stays taken until the process has it"
        );
    }
}
