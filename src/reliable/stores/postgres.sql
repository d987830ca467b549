-- reliable: the PostgreSQL store's schema (schema version 1), for the default names
-- (schema "public", table "reliable_store").
--
-- PostgresStore creates these objects itself on first use when its user may run DDL.
-- Where applications may not, a DBA runs this file once (psql -f postgres.sql), then grants
-- the application's user what the store needs at run time (replace app_user):
--
--   GRANT USAGE ON SCHEMA "public" TO app_user;
--   GRANT SELECT, INSERT, UPDATE, DELETE ON "public"."reliable_store" TO app_user;
--   GRANT SELECT ON "public"."reliable_store_meta" TO app_user;
--   GRANT USAGE ON SEQUENCE "public"."reliable_store_version" TO app_user;
--
-- Other names: print the same SQL with
--   python -c 'from reliable.stores.postgres import PostgresStore; print(PostgresStore.ddl(schema="s", table="t"))'
-- and open the store with PostgresStore(url, schema="s", table="t", create=False)
-- or the URL postgresql://app_user@host/db?schema=s&table=t
--
-- Every statement is idempotent: running the file again changes nothing.

BEGIN;

DO $$ BEGIN  -- CREATE SCHEMA IF NOT EXISTS would need CREATE on the database even when it exists
  IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public') THEN CREATE SCHEMA "public"; END IF;
END $$;

CREATE TABLE IF NOT EXISTS "public"."reliable_store" (
    key        bytea PRIMARY KEY,      -- UTF-8 of the key, so ORDER BY key is code-point order
    value      bytea NOT NULL,         -- the bytes, or JSON text when is_json
    is_json    boolean NOT NULL,
    version    bigint NOT NULL,        -- from the sequence below: grows, never reused
    expires_at double precision        -- store time (seconds since the epoch), NULL = never
);

CREATE INDEX IF NOT EXISTS "reliable_store_expires_at"
    ON "public"."reliable_store" (expires_at) WHERE expires_at IS NOT NULL;

CREATE SEQUENCE IF NOT EXISTS "public"."reliable_store_version" AS bigint;

CREATE TABLE IF NOT EXISTS "public"."reliable_store_meta" (
    name  text PRIMARY KEY,
    value text NOT NULL
);

INSERT INTO "public"."reliable_store_meta" (name, value) VALUES ('schema_version', '1')
    ON CONFLICT (name) DO NOTHING;

COMMIT;
