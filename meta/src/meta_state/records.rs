//! The commands that create records: `cluster init` (the shard table and its first
//! placement), a node's registration (a stable id per instance), tenant creation and a
//! tenant's keys.

use super::*;
use crate::tenant_keys::{KeyScope, TenantKey, FIRST_KEY_LABEL};

impl<E: Engine> MetaState<E> {
    pub(super) fn init_cluster(
        &mut self,
        cluster_id: String,
        shards: u32,
        replicas: u32,
        token: String,
        at_ms: u64,
        batch: &mut WriteBatch,
    ) -> Output {
        if let Some(existing) = &self.cluster {
            if !token.is_empty() && existing.init_token == token {
                return Ok(Reply::Initialized(existing.clone()));
            }
            return Err(MetaError::AlreadyInitialized {
                cluster_id: existing.cluster_id.clone(),
            });
        }
        let info = ClusterInfo {
            cluster_id,
            shards,
            replicas,
            created_at_ms: at_ms,
            init_token: token,
        };
        put_json(batch, single_key(CLUSTER_KEY), &info);
        for id in 0..shards {
            let shard = ShardInfo::placed(id, 1, Vec::new());
            put_json(batch, id_key(SHARD_PREFIX, u64::from(id)), &shard);
            self.shards.insert(id, shard);
        }
        self.cluster = Some(info.clone());
        Ok(Reply::Initialized(info))
    }

    pub(super) fn register_node(
        &mut self,
        (instance_id, certificate_name): (String, String),
        [address, http_address, peer_address]: [String; 3],
        zone: String,
        at_ms: u64,
        batch: &mut WriteBatch,
    ) -> Output {
        let Some(cluster) = &self.cluster else {
            return Err(MetaError::NotInitialized);
        };
        let cluster_id = cluster.cluster_id.clone();
        if let Some(&node_id) = self.instances.get(&instance_id) {
            // A data dir's instance id is no credential: the certificate it first came with
            // is, and another node's certificate cannot take the registration over.
            let bound = self
                .nodes
                .get(&node_id)
                .map(|n| n.certificate_name.clone())
                .unwrap_or_default();
            if !bound.is_empty() && bound != certificate_name {
                return Err(MetaError::CertificateMismatch {
                    node: node_id,
                    bound,
                    presented: certificate_name,
                });
            }
            return Ok(Reply::Registered {
                node_id,
                cluster_id,
            });
        }
        let members = self
            .nodes
            .values()
            .filter(|n| n.state != NodeState::Removed)
            .count();
        if members >= MAX_NODES {
            return Err(MetaError::TooManyNodes { limit: MAX_NODES });
        }
        let node_id = self.next_node_id;
        self.next_node_id += 1;
        let node = NodeInfo {
            id: node_id,
            instance_id: instance_id.clone(),
            address,
            http_address,
            peer_address,
            zone,
            state: NodeState::Up,
            registered_at_ms: at_ms,
            state_changed_at_ms: at_ms,
            certificate_name,
        };
        put_json(batch, id_key(NODE_PREFIX, node_id), &node);
        put_json(batch, named_key(INSTANCE_PREFIX, &instance_id), &node_id);
        put_json(batch, single_key(NEXT_NODE_KEY), &self.next_node_id);
        self.nodes.insert(node_id, node);
        self.instances.insert(instance_id, node_id);
        Ok(Reply::Registered {
            node_id,
            cluster_id,
        })
    }

    pub(super) fn create_tenant(
        &mut self,
        name: String,
        first: TenantKey,
        request_token_hash: String,
        at_ms: u64,
        batch: &mut WriteBatch,
    ) -> Output {
        if let Some(existing) = self.tenants.values_mut().find(|t| t.name == name) {
            let retry =
                !request_token_hash.is_empty() && existing.create_token_hash == request_token_hash;
            if !retry {
                return Err(MetaError::TenantExists {
                    name,
                    id: existing.id,
                });
            }
            // The retry of a create whose answer was lost: the first key it made was never
            // seen, so a fresh one takes its place.
            let lost: Vec<u64> = existing
                .live_keys()
                .filter(|k| k.label == FIRST_KEY_LABEL)
                .map(|k| k.id)
                .collect();
            for id in lost {
                existing.revoke_key(id, at_ms)?;
            }
            let key_id = existing.add_key(first)?;
            let tenant_id = existing.id;
            put_json(batch, id_key(TENANT_PREFIX, tenant_id), &*existing);
            return Ok(Reply::TenantCreated { tenant_id, key_id });
        }
        let mut tenant = TenantInfo {
            id: self.next_tenant_id,
            name,
            created_at_ms: at_ms,
            key_hashes: Vec::new(),
            rules_toml: String::new(),
            rules_version: 0,
            keys: Vec::new(),
            next_key_id: 0,
            create_token_hash: request_token_hash,
            limits: Default::default(),
        };
        let key_id = tenant.add_key(first)?;
        self.next_tenant_id += 1;
        put_json(batch, id_key(TENANT_PREFIX, tenant.id), &tenant);
        put_json(batch, single_key(NEXT_TENANT_KEY), &self.next_tenant_id);
        let tenant_id = tenant.id;
        self.tenants.insert(tenant_id, tenant);
        Ok(Reply::TenantCreated { tenant_id, key_id })
    }

    pub(super) fn tenant_key_change(
        &mut self,
        tenant_id: u64,
        change: KeyChange,
        batch: &mut WriteBatch,
    ) -> Output {
        let tenant = self
            .tenants
            .get_mut(&tenant_id)
            .ok_or_else(|| MetaError::UnknownTenant(tenant_id.to_string()))?;
        let reply = match change {
            KeyChange::Add(key) => Reply::KeyAdded {
                tenant_id,
                key_id: tenant.add_key(key)?,
            },
            KeyChange::Revoke { key_id, at_ms } => {
                Reply::Key(Box::new(tenant.revoke_key(key_id, at_ms)?))
            }
        };
        put_json(batch, id_key(TENANT_PREFIX, tenant_id), &*tenant);
        Ok(reply)
    }
}

/// The key `tenant create` makes: every scope but read-only.
pub(super) fn first_key(hash: String, hint: String, at_ms: u64) -> TenantKey {
    TenantKey {
        id: 0,
        hash,
        scopes: vec![KeyScope::Orders, KeyScope::Print],
        label: FIRST_KEY_LABEL.to_string(),
        hint,
        created_at_ms: at_ms,
        revoked_at_ms: None,
    }
}

/// A change to one tenant's keys.
pub(super) enum KeyChange {
    Add(TenantKey),
    Revoke { key_id: u64, at_ms: u64 },
}
