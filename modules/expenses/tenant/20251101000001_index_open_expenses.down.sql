-- landlord:no-transaction
DROP INDEX CONCURRENTLY expenses_open_idx;
