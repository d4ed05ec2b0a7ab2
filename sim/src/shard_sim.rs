//! [`ShardSim`]: what a simulation built on a [`ShardCluster`] says about its own nodes, and
//! the steps every such simulation then takes the same way: the chaos step, a tick on every
//! replica, and healing at the end of the faults.

use rand::rngs::StdRng;

use crate::chaos::{crash_or_restart, partition_or_heal, Processes};
use crate::network::Packet;
use crate::shard_cluster::ShardCluster;

/// A shard simulation: its cluster, and how its nodes start, crash and handle Readies (which
/// is where each simulation keeps its own bookkeeping).
pub trait ShardSim: Sized {
    type Packet: Packet;

    fn cluster(&mut self) -> &mut ShardCluster<Self::Packet>;

    /// (Re)starts node `id`'s replicas from its engine.
    fn start(&mut self, id: u64);

    /// Crashes node `id`: its replicas go, and whatever they were serving never completes.
    fn crash(&mut self, id: u64);

    /// Handles the replica's Readies until it has none.
    fn drain(&mut self, id: u64, shard: u32);

    /// Starts every node, ascending.
    fn start_all(&mut self) {
        for id in self.cluster().node_ids() {
            self.start(id);
        }
    }

    /// Crashes and restarts nodes, then starts or heals a partition, with the network's
    /// profile; nothing once the network has no faults.
    fn chaos(&mut self) {
        let cluster = self.cluster();
        let Some(faults) = cluster.net.faults().cloned() else {
            return;
        };
        let (ids, down) = (cluster.node_ids(), cluster.down_ids());
        crash_or_restart(&mut AsProcesses(self), &faults, &ids, &down);
        let cluster = self.cluster();
        partition_or_heal(&mut cluster.rng, &mut cluster.net, &ids);
    }

    /// Ticks the replica of each of shards `0..shards` on every node, node by node, and
    /// drains it at once.
    fn tick_all(&mut self, shards: u32) {
        for id in self.cluster().node_ids() {
            for shard in 0..shards {
                self.cluster().tick(id, shard);
                self.drain(id, shard);
            }
        }
    }

    /// Turns the network's faults off for good (and heals it), and restarts every down node.
    fn heal(&mut self) {
        self.cluster().net.perfect();
        for id in self.cluster().down_ids() {
            self.start(id);
        }
    }
}

/// A [`ShardSim`] as the chaos step sees it.
struct AsProcesses<'a, S>(&'a mut S);

impl<S: ShardSim> Processes for AsProcesses<'_, S> {
    fn rng(&mut self) -> &mut StdRng {
        &mut self.0.cluster().rng
    }

    fn crash(&mut self, id: u64) {
        self.0.crash(id);
    }

    fn restart(&mut self, id: u64) {
        self.0.start(id);
    }
}
