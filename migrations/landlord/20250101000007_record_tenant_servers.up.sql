-- The PostgreSQL server each tenant database lives on: a DatabaseServer's name, or 'default' for the server of
-- LANDLORD_ADMIN_DATABASE_URL. Recorded with the slug claim, under the placement lock, and read by every later
-- step for the tenant; never taken from a status field. Every tenant of an earlier Landlord is on 'default'.
ALTER TABLE tenants ADD COLUMN server text NOT NULL DEFAULT 'default';
CREATE INDEX tenants_server ON tenants (server);
