-- landlord:no-transaction
DROP INDEX CONCURRENTLY IF EXISTS expenses_open_idx;
