//! The families a process declares when it opens its database, and what happens to a family a
//! database has that the process no longer declares.

use surge_rocks::RocksEngine;
use surge_storage::{Cf, Engine, Family, Tuning, WriteBatch};

const ORDERS: Cf = Cf::new(5, "orders");
const RETIRED: Cf = Cf::new(4, "shard_meta");

fn family(cf: Cf) -> Family {
    Family {
        cf,
        per_group: true,
        tuning: Tuning::Bulk,
    }
}

#[test]
fn a_family_no_longer_declared_is_kept_and_a_new_one_is_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    {
        let engine = RocksEngine::open(&path, &[Family::META, family(RETIRED)]).expect("open");
        let mut batch = WriteBatch::default();
        batch.put(RETIRED, "旧-1".as_bytes().to_vec(), b"kept".to_vec());
        engine.write(&batch, true).expect("write");
    }
    // A later version declares `orders` and no longer `shard_meta`: it still opens.
    {
        let engine = RocksEngine::open(&path, &[Family::META, family(ORDERS)]).expect("reopen");
        assert_eq!(engine.group_families(), vec![Cf::META, ORDERS]);
        let mut batch = WriteBatch::default();
        batch.put(RETIRED, b"x".to_vec(), b"y".to_vec());
        assert!(
            engine.write(&batch, true).is_err(),
            "an undeclared family is not written through the engine"
        );
    }
    // And nothing in the retired family was lost.
    let engine = RocksEngine::open(&path, &[Family::META, family(RETIRED)]).expect("again");
    assert_eq!(
        engine.get(RETIRED, "旧-1".as_bytes()).expect("get"),
        Some(b"kept".to_vec())
    );
}

#[test]
fn two_families_with_one_code_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let twin = Cf::new(5, "also_orders");
    let err = RocksEngine::open(&dir.path().join("db"), &[family(ORDERS), family(twin)])
        .err()
        .expect("refused");
    assert!(err.to_string().contains("orders"), "{err}");
}
