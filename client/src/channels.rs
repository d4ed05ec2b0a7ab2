//! [`ChannelCache`]: one lazily connected gRPC channel per address, shared by every call to it
//! (tonic multiplexes calls over the HTTP/2 connection).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use surge_grpc::tls::Transport;
use tonic::transport::{Channel, Endpoint};
use tonic::Status;

/// How long a connection attempt may take before the call fails over.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Most channels one cache keeps.
pub const MAX_CHANNELS: usize = 1024;

/// Channels by `host:port`.
pub struct ChannelCache {
    /// Names the addresses in errors: "coordinators", "nodes".
    what: &'static str,
    /// TLS verified against the cluster CA, or plaintext.
    transport: Transport,
    channels: Mutex<HashMap<String, Channel>>,
}

impl ChannelCache {
    pub fn new(what: &'static str, transport: Transport) -> ChannelCache {
        ChannelCache {
            what,
            transport,
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// The transport new channels use.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The channel to `address`, created with `configure` on first use.
    pub fn get(
        &self,
        address: &str,
        configure: impl FnOnce(Endpoint) -> Endpoint,
    ) -> Result<Channel, Status> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = channels.get(address) {
            return Ok(c.clone());
        }
        let endpoint: Endpoint = self.transport.endpoint(address).map_err(|e| {
            Status::invalid_argument(format!("{}: bad address {address:?}: {e}", self.what))
        })?;
        let channel =
            configure(endpoint.connect_timeout(CONNECT_TIMEOUT).tcp_nodelay(true)).connect_lazy();
        // Addresses come from the network (shard maps, leader hints): the cache is bounded,
        // and a full one forgets an arbitrary channel (it reconnects when next needed).
        if channels.len() >= MAX_CHANNELS {
            if let Some(old) = channels.keys().next().cloned() {
                channels.remove(&old);
            }
        }
        channels.insert(address.to_string(), channel.clone());
        Ok(channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_channel_per_address_and_bad_addresses_are_named() {
        let cache = ChannelCache::new("nodes", Transport::Plaintext);
        assert!(cache.get("127.0.0.1:1", |e| e).is_ok());
        assert!(cache.get("127.0.0.1:1", |e| e).is_ok());
        assert_eq!(cache.channels.lock().map(|c| c.len()).unwrap_or(0), 1);
        let err = cache.get("not an address", |e| e).expect_err("bad address");
        assert!(
            err.message().starts_with("nodes: bad address"),
            "{}",
            err.message()
        );
    }

    #[tokio::test]
    async fn the_cache_stays_bounded_whatever_addresses_arrive() {
        let cache = ChannelCache::new("nodes", Transport::Plaintext);
        for port in 1..=(MAX_CHANNELS as u16 + 50) {
            cache
                .get(&format!("127.0.0.1:{port}"), |e| e)
                .expect("channel");
        }
        assert_eq!(
            cache.channels.lock().map(|c| c.len()).unwrap_or(0),
            MAX_CHANNELS
        );
        // The latest address is always kept.
        let last = format!("127.0.0.1:{}", MAX_CHANNELS as u16 + 50);
        assert!(cache.channels.lock().is_ok_and(|c| c.contains_key(&last)));
    }
}
