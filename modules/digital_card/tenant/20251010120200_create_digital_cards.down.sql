DROP TABLE digital_cards;
