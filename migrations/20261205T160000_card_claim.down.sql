DROP TABLE card_claim;
