CREATE TABLE expenses (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id text NOT NULL,
    category_id  bigint REFERENCES expense_categories (id) ON DELETE SET NULL,
    -- The task the money was spent for; this reference is why the module depends on tasks.
    task_id      bigint REFERENCES tasks (id) ON DELETE SET NULL,
    amount       numeric(12, 2) NOT NULL CHECK (amount >= 0),
    currency     char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    description  text,
    spent_on     date NOT NULL,
    submitted_by text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX expenses_workspace_spent_on_idx ON expenses (workspace_id, spent_on);
CREATE INDEX expenses_category_idx ON expenses (category_id);
CREATE INDEX expenses_task_idx ON expenses (task_id) WHERE task_id IS NOT NULL;
