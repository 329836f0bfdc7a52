-- Lifeboat cache, schema 6: secondary indexes a first sync builds once its rows are in.
--
-- Upstream ids are random, so rows inserted one by one land all over an index, and each of
-- a sync's commits writes again (and encrypts again) most of that index's pages. A first
-- sync into empty tables drops the indexes listed in crates/store/src/deferred.rs and builds
-- each once its table is complete, from sorted rows. Each dropped index's own definition waits
-- here, written in the transaction that dropped it, so a sync killed in between leaves
-- a record of exactly what is still to build.
CREATE TABLE deferred_index (
    name  TEXT PRIMARY KEY,
    -- the table it indexes
    tbl   TEXT NOT NULL,
    sql   TEXT NOT NULL
);
