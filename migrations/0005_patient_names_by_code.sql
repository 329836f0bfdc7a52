-- Lifeboat cache, schema 5: the patient name index is kept by the code that writes patients
-- (crates/store/src/cache.rs), not by triggers.
--
-- A trigger makes every patient write a statement with its own savepoint, and FTS5 writes
-- its pending index to disk at every savepoint: a first sync wrote the name index one
-- patient at a time and spent much of its time merging the pieces. The index's contents
-- are unchanged; only who maintains them.
DROP TRIGGER patient_fts_insert;
DROP TRIGGER patient_fts_delete;
DROP TRIGGER patient_fts_update;
