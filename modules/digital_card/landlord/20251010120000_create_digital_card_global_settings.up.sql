-- Platform-wide defaults, shared by every tenant: lives once in the landlord database.
CREATE TABLE digital_card_global_settings (
    key         text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_]*$'),
    value       jsonb NOT NULL,
    description text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

INSERT INTO digital_card_global_settings (key, value, description) VALUES
    ('default_theme', '"classic"', 'Theme given to a new card'),
    ('max_cards_per_owner', '5', 'How many cards one user may publish'),
    ('qr_code_enabled', 'true', 'Whether published cards show a QR code');
