-- Lifeboat cache, schema 8: the patient name index holds each name folded the way a search
-- folds what is typed (crates/model/src/names.rs: lower case, accents off, and ł, ø, đ, ı,
-- ß, æ written as l, o, d, i, ss, ae), not the name as written.
--
-- The full-text tokenizer takes off the accents Unicode decomposes (é, ü) but keeps letters
-- such as ł, ø and ı, while a search folds them: a patient named Michał, Søren or Yılmaz
-- was found by neither spelling. Rebuilt from the folded names the patient table holds.
DROP TABLE patient_name_fts;
CREATE VIRTUAL TABLE patient_name_fts USING fts5 (
    family_norm, given_norm,
    content = 'patient', content_rowid = 'pk',
    tokenize = 'unicode61 remove_diacritics 2',
    prefix = '1 2 3'
);
INSERT INTO patient_name_fts (patient_name_fts) VALUES ('rebuild');
