//! What a data dir records about the process that owns it, checked at every start so that a
//! data dir of another process, role or cluster is refused rather than silently reused.

use serde::{Deserialize, Serialize};
use surge_storage::{keys, Cf, Engine, EngineError, WriteBatch};

/// The owner of a data dir.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// `coordinator` or `node`.
    pub kind: String,
    /// Coordinator id, or node id (0 until the node is registered).
    pub id: u64,
    /// A node's random registration key; empty for coordinators.
    #[serde(default)]
    pub instance_id: String,
    /// The cluster this data dir belongs to, once known.
    #[serde(default)]
    pub cluster_id: String,
}

/// The identity lives outside every group's key range.
fn identity_key() -> Vec<u8> {
    keys::data_key(u64::MAX, b"identity")
}

/// Reads the identity, if the data dir has one.
pub fn load<E: Engine + ?Sized>(engine: &E) -> Result<Option<Identity>, EngineError> {
    let key = identity_key();
    match engine.get(Cf::META, &key)? {
        Some(raw) => serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| EngineError::Corrupt {
                cf: Cf::META,
                key,
                reason: e.to_string(),
            }),
        None => Ok(None),
    }
}

/// Writes the identity durably.
pub fn save<E: Engine + ?Sized>(engine: &E, identity: &Identity) -> Result<(), EngineError> {
    let mut batch = WriteBatch::default();
    let value = serde_json::to_vec(identity).map_err(|e| EngineError::Backend(e.to_string()))?;
    batch.put(Cf::META, identity_key(), value);
    engine.write(&batch, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use surge_storage::{Family, MemEngine};

    #[test]
    fn identity_round_trips() -> Result<(), EngineError> {
        let engine = MemEngine::new(&[Family::META]);
        assert_eq!(load(&engine)?, None);
        let id = Identity {
            kind: "node".into(),
            id: 3,
            instance_id: "i".into(),
            cluster_id: "c".into(),
        };
        save(&engine, &id)?;
        assert_eq!(load(&engine)?, Some(id));
        Ok(())
    }
}
