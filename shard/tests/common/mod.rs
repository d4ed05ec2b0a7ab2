//! The shard state machine driven entry by entry on the in-memory engine, as a replica applies
//! its log: shared by the lifecycle tests.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use prost::Message as _;
use surge_proto::v1::order_action::Kind;
use surge_proto::v1::shard_command::Command as Cmd;
use surge_proto::v1::{
    ActionBatch, AddWaybillBlock, Allocation, Empty, JobDone, Order, OrderAction, OrderRecord,
    ShardCommand, SubmitBatch, SubmitItem, WaybillBlock,
};
use surge_shard::families::SHARD_FAMILIES;
use surge_shard::{ActionOutcome, Applied, Done, RefuseCode, ShardSm};
use surge_storage::{Engine, MemEngine, StateMachine, WriteBatch};

pub const TENANT: u64 = 7;

pub struct Shard {
    pub sm: ShardSm<MemEngine>,
    pub engine: Arc<MemEngine>,
    pub index: u64,
    pub at: u64,
}

impl Shard {
    pub fn new() -> Shard {
        let engine = Arc::new(MemEngine::new(&SHARD_FAMILIES));
        Shard {
            sm: ShardSm::new(2, engine.clone()),
            engine,
            index: 10,
            at: 1_000,
        }
    }

    pub fn apply(&mut self, cmd: Cmd) -> Applied {
        self.index += 1;
        self.at += 10;
        let mut batch = WriteBatch::default();
        let data = ShardCommand { command: Some(cmd) }.encode_to_vec();
        let out = self
            .sm
            .apply(self.index, &data, &mut batch)
            .expect("applies");
        self.engine.write(&batch, true).expect("write");
        self.sm.on_batch_written();
        out
    }

    pub fn submit(&mut self, ext: &str) -> String {
        let order = Order {
            platform: "jd".into(),
            external_order_id: ext.into(),
            ..Order::default()
        };
        let cmd = Cmd::Submit(SubmitBatch {
            tenant_id: TENANT,
            received_at_ms: self.at,
            items: vec![SubmitItem {
                order: Some(order),
                payload_hash: vec![1],
            }],
        });
        match self.apply(cmd) {
            Applied::Submitted(items) => match &items[0] {
                surge_shard::ItemOutcome::Accepted(a) => a.order_id.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }

    pub fn act_all(&mut self, items: Vec<(String, Kind)>) -> Vec<ActionOutcome> {
        let at_ms = self.at + 10;
        let items = items
            .into_iter()
            .map(|(id, kind)| OrderAction {
                tenant_id: TENANT,
                expect_status: 0,
                order_id: id,
                actor: "test".into(),
                reason: "because".into(),
                kind: Some(kind),
            })
            .collect();
        match self.apply(Cmd::Actions(ActionBatch { at_ms, items })) {
            Applied::Actions(out) => out,
            other => panic!("{other:?}"),
        }
    }

    pub fn act(&mut self, id: &str, kind: Kind) -> ActionOutcome {
        self.act_all(vec![(id.to_string(), kind)]).remove(0)
    }

    pub fn done(&mut self, id: &str, kind: Kind) -> Done {
        match self.act(id, kind) {
            ActionOutcome::Done(d) => *d,
            other => panic!("{id}: {other:?}"),
        }
    }

    pub fn get(&self, id: &str) -> OrderRecord {
        self.sm.get(TENANT, id).expect("read").expect("exists")
    }

    pub fn add_block(&mut self, seq: u64, range_id: u64, from: u64, to: u64) -> bool {
        let cmd = Cmd::AddBlock(AddWaybillBlock {
            tenant_id: TENANT,
            carrier: "SF".into(),
            seq,
            block: Some(WaybillBlock {
                range_id,
                prefix: "SF".into(),
                from,
                to,
                width: 10,
            }),
        });
        matches!(self.apply(cmd), Applied::BlockAdded(true))
    }

    /// Submits and moves an order to ALLOCATED with carrier SF.
    pub fn allocated(&mut self, ext: &str) -> String {
        let id = self.submit(ext);
        self.done(&id, Kind::Approve(Empty {}));
        self.done(&id, alloc());
        id
    }
}

pub fn alloc() -> Kind {
    Kind::Allocate(Allocation {
        carrier: "SF".into(),
        rule: "r1".into(),
    })
}

pub fn printed(job: &str) -> Kind {
    Kind::Printed(JobDone {
        job_id: job.into(),
        station: "s1".into(),
    })
}

pub fn refused(o: &ActionOutcome) -> (RefuseCode, String) {
    match o {
        ActionOutcome::Refused { code, message } => (*code, message.clone()),
        other => panic!("not refused: {other:?}"),
    }
}
