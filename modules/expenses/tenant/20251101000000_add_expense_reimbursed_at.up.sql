-- Release 1.1.0: record when an expense was paid back; NULL means still open.
ALTER TABLE expenses ADD COLUMN reimbursed_at timestamptz;
