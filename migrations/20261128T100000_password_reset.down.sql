DROP TABLE staff_password_reset;
DELETE FROM sign_in_failure WHERE subject LIKE 'reset-%';
