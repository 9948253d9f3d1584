DROP TABLE expense_categories;
