//! Print jobs inside the shard: the outbox row a bound order's label waits in, its lease to a
//! printing station, the report that it printed, and reprints.

use crate::families::OUTBOX;
use prost::Message as _;
use surge_proto::v1::{OrderAction, OrderRecord, OrderStatus, OutboxJob};
use surge_storage::{Engine, WriteBatch};

use crate::actions::{refusal, refused, Ctx, MAX_REPRINTS};
use crate::ids::{order_id, parse_id};
use crate::keys as k;
use crate::lifecycle::{decide, Outcome, Step};
use crate::outcome::{ActionOutcome, RefuseCode};
use crate::state::{storage_failed, ShardSm};

impl<E: Engine> ShardSm<E> {
    pub(crate) fn job_key(&self, job: &OutboxJob) -> Option<Vec<u8>> {
        let (_, index, pos) = parse_id(&job.job_id)?;
        Some(k::job(self.shard, job.tenant_id, index, pos))
    }

    pub(crate) fn put_job(&mut self, batch: &mut WriteBatch, job: &OutboxJob) {
        if let Some(key) = self.job_key(job) {
            self.put(batch, OUTBOX, key, job.encode_to_vec());
        }
    }

    pub(crate) fn load_job(
        &self,
        tenant: u64,
        job_id: &str,
    ) -> Result<Option<OutboxJob>, ActionOutcome> {
        let Some((_, index, pos)) = parse_id(job_id) else {
            return Err(refused(
                RefuseCode::NotFound,
                format!("job_id: malformed {job_id:?}"),
            ));
        };
        Ok(self
            .read_msg(OUTBOX, &k::job(self.shard, tenant, index, pos))
            .unwrap_or_else(|e| storage_failed(e)))
    }

    pub(crate) fn drop_pending_job(&mut self, rec: &mut OrderRecord, batch: &mut WriteBatch) {
        if rec.pending_job.is_empty() {
            return;
        }
        if let Some((_, index, pos)) = parse_id(&rec.pending_job) {
            self.delete(batch, OUTBOX, k::job(self.shard, rec.tenant_id, index, pos));
        }
        rec.pending_job.clear();
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn printed(
        &mut self,
        ctx: &Ctx,
        action: &OrderAction,
        rec: &mut OrderRecord,
        job_id: &str,
        station: &str,
        job: &mut Option<OutboxJob>,
        batch: &mut WriteBatch,
    ) -> Result<bool, ActionOutcome> {
        if rec.pending_job != job_id {
            // Printed before (a retried ack), or voided by a cancel while it printed.
            if rec.status() == OrderStatus::Cancelled || rec.intercepted {
                return Err(refused(
                    RefuseCode::FailedPrecondition,
                    format!(
                        "order {} was cancelled: discard this label, its waybill is voided",
                        rec.order_id
                    ),
                ));
            }
            return Ok(false);
        }
        let done = self.load_job(rec.tenant_id, job_id)?;
        let reprint = done.as_ref().map_or(0, |j| j.reprint);
        // Decided before anything is written: a refusal leaves the job where it was.
        let moved = if reprint == 0 {
            match decide(rec.status(), false, rec.intercepted, Step::MarkPrinted) {
                Ok(Outcome::Moved { to, .. }) => Some(to),
                Ok(_) => None,
                Err(r) => return Err(refusal(r)),
            }
        } else {
            None
        };
        self.drop_pending_job(rec, batch);
        let mut fake = action.clone();
        fake.reason = format!("job {job_id} at station {station}");
        match moved {
            Some(to) => self.transition(ctx, &fake, rec, to, "print", batch),
            None => {
                let status = rec.status();
                let name = if reprint > 0 { "reprinted" } else { "print" };
                self.transition(ctx, &fake, rec, status, name, batch);
            }
        }
        *job = done;
        Ok(true)
    }

    pub(crate) fn reprint(
        &mut self,
        ctx: &Ctx,
        action: &OrderAction,
        rec: &mut OrderRecord,
        job: &mut Option<OutboxJob>,
        batch: &mut WriteBatch,
    ) -> Result<bool, ActionOutcome> {
        let printable = matches!(
            rec.status(),
            OrderStatus::LabelPrinted | OrderStatus::Packed
        );
        if !printable || rec.intercepted {
            return Err(refused(
                RefuseCode::FailedPrecondition,
                format!("only a printed, not intercepted, unshipped order is reprinted; order {} is {:?}{}", rec.order_id, rec.status(), if rec.intercepted { " (intercepted)" } else { "" }),
            ));
        }
        if !rec.pending_job.is_empty() {
            // A reprint is already waiting: asking again does not print twice.
            *job = self.load_job(rec.tenant_id, &rec.pending_job)?;
            return Ok(false);
        }
        if rec.reprints >= MAX_REPRINTS {
            return Err(refused(
                RefuseCode::FailedPrecondition,
                format!(
                    "order {} was reprinted {MAX_REPRINTS} times, the most allowed",
                    rec.order_id
                ),
            ));
        }
        Self::history_room(rec)?;
        rec.reprints += 1;
        let new_job = OutboxJob {
            job_id: order_id(self.shard, ctx.index, ctx.pos as usize),
            tenant_id: rec.tenant_id,
            order_id: rec.order_id.clone(),
            reprint: rec.reprints,
            ..OutboxJob::default()
        };
        rec.pending_job = new_job.job_id.clone();
        self.put_job(batch, &new_job);
        let status = rec.status();
        self.transition(ctx, action, rec, status, "reprint", batch);
        *job = Some(new_job);
        Ok(true)
    }

    /// Leases the order's pending job to a station, unless another station holds a live lease.
    pub(crate) fn lease(
        &mut self,
        ctx: &Ctx,
        rec: &OrderRecord,
        lease: surge_proto::v1::JobLease,
        job: &mut Option<OutboxJob>,
        batch: &mut WriteBatch,
    ) -> Result<bool, ActionOutcome> {
        if rec.pending_job != lease.job_id {
            return Err(refused(
                RefuseCode::FailedPrecondition,
                format!("job {} is no longer pending", lease.job_id),
            ));
        }
        let Some(mut current) = self.load_job(rec.tenant_id, &lease.job_id)? else {
            return Err(refused(
                RefuseCode::FailedPrecondition,
                format!("job {} is no longer pending", lease.job_id),
            ));
        };
        let held_elsewhere = !current.leased_to.is_empty()
            && current.leased_to != lease.station
            && current.lease_until_ms > ctx.at_ms;
        if held_elsewhere {
            return Err(refused(
                RefuseCode::FailedPrecondition,
                format!(
                    "job {} is leased to station {} until {}",
                    lease.job_id, current.leased_to, current.lease_until_ms
                ),
            ));
        }
        current.leased_to = lease.station;
        current.lease_until_ms = lease.until_ms;
        current.deliveries += 1;
        self.put_job(batch, &current);
        *job = Some(current);
        Ok(false)
    }
}
