-- Lifeboat cache, schema 4: the downtime pack, prepared ahead of an outage.
--
-- While the upstream is up, the next working day's day list and clinical summary pack are
-- rendered (by default each evening) and kept here, inside the encrypted cache, ready to
-- print the moment they are needed. One preparation is one `prepared_at`; the last few are
-- kept and older ones deleted.
CREATE TABLE downtime_pack (
    id          INTEGER PRIMARY KEY,
    prepared_at TEXT NOT NULL,
    for_date    TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('day_list', 'summary_pack')),
    data_as_of  TEXT NOT NULL,
    pdf         BLOB NOT NULL
);
CREATE INDEX downtime_pack_by_preparation ON downtime_pack (prepared_at);
