-- landlord:no-transaction
-- Built without blocking writes on a table that may already be large; CONCURRENTLY cannot run in a transaction.
CREATE INDEX CONCURRENTLY expenses_open_idx ON expenses (workspace_id, spent_on) WHERE reimbursed_at IS NULL;
