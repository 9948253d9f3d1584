CREATE TABLE digital_cards (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id       text NOT NULL,
    template_id    bigint REFERENCES card_templates (id) ON DELETE SET NULL,
    -- Public address of the card: /c/<slug>.
    slug           text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    display_name   text NOT NULL,
    job_title      text,
    email          text,
    phone          text,
    links          jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(links) = 'array'),
    -- The photo is a row of the core media table.
    photo_media_id bigint REFERENCES media (id) ON DELETE SET NULL,
    published_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX digital_cards_owner_idx ON digital_cards (owner_id);
