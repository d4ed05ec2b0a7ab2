//! The processes `surgectl dev up` started, and the nodes `dev add-node` added to its
//! cluster: stopped together (SIGTERM, then SIGKILL for children) when the cluster stops.

use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::Context;
use surgectl::dev_cluster::{self, ProcessEntry};
use surgectl::held_listeners::HeldListeners;

/// Children this command owns, and pids of nodes added later; stopped when dropped.
#[derive(Default)]
pub(crate) struct Children {
    owned: Vec<(String, Child)>,
    added: Vec<u32>,
}

impl Children {
    /// Starts `e`, handing it `listeners` when the OS chose its ports, and records its pid.
    pub(crate) fn start(
        &mut self,
        e: &mut ProcessEntry,
        listeners: Option<HeldListeners>,
    ) -> anyhow::Result<()> {
        let child = dev_cluster::spawn_with(e, listeners)
            .with_context(|| format!("starting {}", e.name))?;
        e.pid = child.id();
        self.owned.push((e.name.clone(), child));
        Ok(())
    }

    /// Names of children that have exited.
    pub(crate) fn exited(&mut self) -> Vec<String> {
        self.owned
            .iter_mut()
            .filter_map(|(n, c)| matches!(c.try_wait(), Ok(Some(_))).then(|| n.clone()))
            .collect()
    }

    /// Names of the children this command started.
    pub(crate) fn names(&self) -> Vec<String> {
        self.owned.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Also stops the processes `pids` when the cluster stops (nodes `dev add-node` started).
    pub(crate) fn adopt(&mut self, pids: Vec<u32>) {
        self.added = pids;
    }

    /// Stops every child, and the nodes `dev add-node` started (recorded in cluster.json).
    pub(crate) fn stop(&mut self) {
        for (_, child) in &self.owned {
            let _ = dev_cluster::signal(child.id(), nix::sys::signal::Signal::SIGTERM);
        }
        for pid in &self.added {
            let _ = dev_cluster::signal(*pid, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for (name, child) in &mut self.owned {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(child.try_wait(), Ok(None)) {
                eprintln!("{name} did not stop in time; killing it");
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        self.owned.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop();
    }
}
