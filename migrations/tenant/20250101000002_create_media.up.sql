CREATE TABLE media (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_type      text NOT NULL,
    model_id        text NOT NULL,
    collection_name text NOT NULL DEFAULT 'default',
    file_name       text NOT NULL,
    mime_type       text,
    size_bytes      bigint NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX media_model_idx ON media (model_type, model_id);
