ALTER TABLE expenses DROP COLUMN reimbursed_at;
