-- landlord:no-transaction
-- Built without blocking writes on a table that may already be large; CONCURRENTLY cannot run in a transaction.
-- IF NOT EXISTS: an interrupted build is dropped (it is left INVALID) and run again by the operator.
CREATE INDEX CONCURRENTLY IF NOT EXISTS expenses_open_idx ON expenses (workspace_id, spent_on) WHERE reimbursed_at IS NULL;
