//! The client history of the shard simulation and its linearizability checker: per external
//! id, a write-once register (see [`check_register`]).

/// One client operation on one external id, with logical invoke and completion times.
#[derive(Clone, Debug)]
pub(crate) enum OpKind {
    /// `payload` 0 is the canonical payload of the key, 1 a different one.
    Submit {
        payload: u8,
    },
    Read,
}

#[derive(Clone, Debug)]
pub(crate) enum OpResult {
    Accepted(String),
    Conflict(String),
    Found(Option<String>),
}

#[derive(Clone, Debug)]
pub(crate) struct Op {
    pub(crate) key: u64,
    pub(crate) kind: OpKind,
    pub(crate) invoked: u64,
    pub(crate) completed: Option<(u64, OpResult)>,
}

/// A write-once register per external id: the first committed submit fixes the order id; a
/// history is linearizable iff
/// - every completed submit and every read that found something names that one order id;
/// - a submit is answered Conflict only with a payload other than the one that was stored;
/// - a read that found nothing began before any submit of the key was acknowledged, and
///   before any read of the key that found it had completed (once visible, always visible);
/// - a read that found the order completed after some submit of the key was invoked.
pub(crate) fn check_register(key: u64, ops: &[&Op]) -> Result<(), String> {
    let stored_payload = check_one_order_id(key, ops)?;
    for op in ops {
        if let (OpKind::Submit { payload }, Some((_, OpResult::Conflict(_)))) =
            (&op.kind, &op.completed)
        {
            if stored_payload == Some(*payload) {
                return Err(format!(
                    "key {key}: the stored payload {payload} was refused"
                ));
            }
        }
    }
    let visible_since = ops
        .iter()
        .filter_map(|op| match (&op.kind, &op.completed) {
            (OpKind::Submit { .. }, Some((t, OpResult::Accepted(_) | OpResult::Conflict(_)))) => {
                Some(*t)
            }
            (OpKind::Read, Some((t, OpResult::Found(Some(_))))) => Some(*t),
            _ => None,
        })
        .min();
    let first_submit = ops
        .iter()
        .filter(|op| matches!(op.kind, OpKind::Submit { .. }))
        .map(|op| op.invoked)
        .min();
    for op in ops {
        match (&op.kind, &op.completed) {
            (OpKind::Read, Some((_, OpResult::Found(None))))
                if visible_since.is_some_and(|t| op.invoked > t) =>
            {
                return Err(format!(
                    "key {key}: a read invoked at {} found nothing, but the order was visible at {visible_since:?}",
                    op.invoked
                ));
            }
            (OpKind::Read, Some((done, OpResult::Found(Some(_)))))
                if first_submit.is_none_or(|s| s > *done) =>
            {
                return Err(format!(
                    "key {key}: a read found an order nobody had submitted yet"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every answer names one order id, and only one payload is ever accepted; returns that
/// payload.
fn check_one_order_id(key: u64, ops: &[&Op]) -> Result<Option<u8>, String> {
    let mut id: Option<&str> = None;
    let mut stored_payload: Option<u8> = None;
    for op in ops {
        let named = match (&op.kind, op.completed.as_ref().map(|c| &c.1)) {
            (OpKind::Submit { payload }, Some(OpResult::Accepted(x))) => {
                if let Some(p) = stored_payload {
                    if p != *payload {
                        return Err(format!(
                            "key {key}: payloads {p} and {payload} both accepted"
                        ));
                    }
                }
                stored_payload = Some(*payload);
                Some(x.as_str())
            }
            (OpKind::Submit { .. }, Some(OpResult::Conflict(x))) => Some(x.as_str()),
            (OpKind::Read, Some(OpResult::Found(Some(x)))) => Some(x.as_str()),
            _ => None,
        };
        if let Some(x) = named {
            match id {
                None => id = Some(x),
                Some(prev) if prev != x => {
                    return Err(format!("key {key}: two order ids {prev} and {x}"))
                }
                _ => {}
            }
        }
    }
    Ok(stored_payload)
}
