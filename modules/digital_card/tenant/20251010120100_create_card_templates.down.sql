DROP TABLE card_templates;
