"""History import: CSV or Parquet files of past messages into ODS, bad rows into quarantine.

``gridlake backfill import FILE... --kind KIND`` loads files of one message kind (a
:class:`~lakehouse.contracts.MessageContract`) into that kind's ODS table, so that a
backfill (:mod:`jobs.batch.backfill`) can then recompute DIM/DWD/DWS/ADS over the imported
days. It is the stream's ODS step for rows that never went through Kafka:

* every file is checked first (exists, readable, format, columns, parseable, not empty),
  all of them before any table is touched (:func:`.plan.plan_import`);
* each row is read into the JSON value the stream would have received
  (:func:`.files.read_value`) and checked by the contract's own
  :meth:`~lakehouse.contracts.MessageContract.validate`, so reasons are the stream's
  (``missing_field:X``, ``bad_type:X``); a valid row goes to ``ods_<kind>``, an invalid one
  to ``ods_quarantine`` with its reason and the raw row as JSON, each row to exactly one of
  them;
* the Kafka position of an imported row is synthetic and deterministic: topic
  ``import:<topic>`` (``:`` never occurs in a Kafka topic name, so no key collides with a
  streamed row), partition and the high half of the offset from the SHA-256 of the file's
  bytes, the low 32 bits of the offset the row's index; re-importing the same file
  upserts the same keys. ``ingest_ts`` is the row's event time (a history row counts as
  received on time: ``lateness`` is ``on_time``), so that it too is the same on every
  import.

The modules, bottom up:

* :mod:`.rows` — what an imported message becomes: its synthetic Kafka position and its
  ODS or quarantine row;
* :mod:`.files` — reading CSV and Parquet files and checking their columns and values;
* :mod:`.plan` — checking and counting a whole import before anything is written, and the
  backfill that should follow it;
* :mod:`.load` — writing a planned import with Spark, and the check that no streaming job
  writes the same tables meanwhile.

See docs/backfill.md, "History import".
"""
