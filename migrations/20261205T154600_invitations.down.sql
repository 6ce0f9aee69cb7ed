DROP TABLE invitation;
DROP TABLE invitation_batch;
