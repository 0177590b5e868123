package io.gridlake.flink.hudi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.catalog.UniqueConstraint;
import org.apache.flink.table.types.logical.RowType;
import org.apache.hudi.common.engine.HoodieLocalEngineContext;
import org.apache.hudi.common.model.HoodieBaseFile;
import org.apache.hudi.common.table.HoodieTableMetaClient;
import org.apache.hudi.common.table.view.HoodieTableFileSystemView;
import org.apache.hudi.hadoop.fs.HadoopFSUtils;
import org.apache.parquet.avro.AvroParquetReader;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.util.HadoopInputFile;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The writer against a real Hudi table on the local file system. */
class HudiTableWriterTest {

  private static final String PARTITION = "2026-03-02";

  @TempDir Path dir;

  private HudiSinkSpec spec(String tableType, Map<String, String> hoodie) {
    ResolvedSchema s =
        new ResolvedSchema(
            List.of(
                Column.physical("k", DataTypes.STRING().notNull()),
                Column.physical("v", DataTypes.BIGINT()),
                Column.physical("ts", DataTypes.BIGINT().notNull()),
                Column.physical("dt", DataTypes.STRING().notNull())),
            List.of(),
            UniqueConstraint.primaryKey("pk", List.of("k")),
            List.of());
    Configuration c = new Configuration();
    c.setString("path", dir.resolve("t").toUri().toString());
    c.setString("table.name", "t");
    c.setString("table.type", tableType);
    c.setString("record.key.fields", "k");
    c.setString("ordering.field", "ts");
    c.setString("partition.path.field", "dt");
    return HudiDynamicTableFactory.buildSpec(
        c, s, (RowType) s.toPhysicalRowDataType().getLogicalType(), hoodie);
  }

  private static GenericRecord rec(HudiTableWriter w, String k, long v, long ts) {
    GenericRecord r = new GenericData.Record(w.schema());
    r.put("k", k);
    r.put("v", v);
    r.put("ts", ts);
    r.put("dt", PARTITION);
    return r;
  }

  private HoodieTableFileSystemView view() {
    HoodieTableMetaClient meta =
        HoodieTableMetaClient.builder()
            .setConf(HadoopFSUtils.getStorageConf(new org.apache.hadoop.conf.Configuration()))
            .setBasePath(dir.resolve("t").toUri().toString())
            .build();
    return HoodieTableFileSystemView.fileListingBasedFileSystemView(
        new HoodieLocalEngineContext(meta.getStorageConf()),
        meta,
        meta.getCommitsAndCompactionTimeline().filterCompletedInstants());
  }

  /** Key → value in the latest base files of the partition (replaced file groups excluded). */
  private Map<String, Long> baseFileValues() throws IOException {
    org.apache.hadoop.conf.Configuration conf = new org.apache.hadoop.conf.Configuration();
    Map<String, Long> out = new HashMap<>();
    try (HoodieTableFileSystemView view = view()) {
      for (HoodieBaseFile f : view.getLatestBaseFiles(PARTITION).collect(Collectors.toList())) {
        try (ParquetReader<GenericRecord> reader =
            AvroParquetReader.<GenericRecord>builder(
                    HadoopInputFile.fromPath(new org.apache.hadoop.fs.Path(f.getPath()), conf))
                .build()) {
          for (GenericRecord r = reader.read(); r != null; r = reader.read()) {
            Long before = out.put(r.get("k").toString(), (Long) r.get("v"));
            assertNull(before, "key " + r.get("k") + " in two file groups");
          }
        }
      }
    }
    return out;
  }

  private void deleteTable() throws IOException {
    try (java.util.stream.Stream<Path> paths = java.nio.file.Files.walk(dir.resolve("t"))) {
      for (Path p : paths.sorted(java.util.Comparator.reverseOrder()).collect(Collectors.toList())) {
        java.nio.file.Files.delete(p);
      }
    }
  }

  private long fileGroups() {
    try (HoodieTableFileSystemView view = view()) {
      return view.getLatestFileSlices(PARTITION).count();
    }
  }

  /** Optimistic concurrency with the file-system lock, as GridLake's lake settings give. */
  private static final Map<String, String> OPTIMISTIC =
      Map.of(
          "hoodie.write.concurrency.mode", "optimistic_concurrency_control",
          "hoodie.write.lock.provider",
              "org.apache.hudi.client.transaction.lock.FileSystemBasedLockProvider",
          "hoodie.write.lock.filesystem.expire", "1",
          "hoodie.clean.failed.writes.policy", "LAZY");

  @Test
  void commitThatLosesAConflictIsWrittenAgain() throws IOException {
    for (String type : List.of("COPY_ON_WRITE", "MERGE_ON_READ")) {
      HudiSinkSpec spec = spec(type, OPTIMISTIC);
      org.apache.hadoop.conf.Configuration conf = new org.apache.hadoop.conf.Configuration();
      try (HudiTableWriter stream = new HudiTableWriter(spec, conf);
          HudiTableWriter backfill = new HudiTableWriter(spec, conf)) {
        stream.open();
        backfill.open();
        stream.commit(List.of(rec(stream, "x", 1, 1)), List.of());
        AtomicInteger attempts = new AtomicInteger();
        // the backfill commits to x's file group while the stream's commit is in flight
        stream.beforeComplete(
            () -> {
              if (attempts.getAndIncrement() == 0) {
                try {
                  backfill.commit(List.of(rec(backfill, "x", 2, 2)), List.of());
                } catch (IOException e) {
                  throw new UncheckedIOException(e);
                }
              }
            });
        stream.commit(List.of(rec(stream, "x", 3, 3), rec(stream, "y", 1, 3)), List.of());
        assertEquals(2, attempts.get(), type + ": the conflicting attempt was not written again");
        assertEquals(1, stream.conflicts(), type);
        assertEquals(2, stream.commits(), type);
        // compaction makes the base files hold every write of the MERGE_ON_READ table
        stream.beforeComplete(() -> {});
        int untilCompaction = type.equals("MERGE_ON_READ") ? 5 : 0;
        for (int i = 0; i < untilCompaction; i++) {
          stream.commit(List.of(rec(stream, "z", i, 10 + i)), List.of());
        }
      }
      Map<String, Long> got = baseFileValues();
      assertEquals(3L, got.get("x"), type + ": the newer stream version of x must win");
      assertEquals(1L, got.get("y"), type);
      deleteTable();
    }
  }

  @Test
  void mergeOnReadKeepsLoggedUpdatesWhenInsertsArrive() throws IOException {
    // Compaction after the third delta commit, so that the base files hold every write then.
    HudiSinkSpec spec =
        spec("MERGE_ON_READ", Map.of("hoodie.compact.inline.max.delta.commits", "3"));
    try (HudiTableWriter w = new HudiTableWriter(spec, new org.apache.hadoop.conf.Configuration())) {
      w.open();
      w.commit(List.of(rec(w, "a", 1, 1), rec(w, "b", 1, 1)), List.of());
      // an update only: logged against the small base file of a and b
      w.commit(List.of(rec(w, "a", 2, 2)), List.of());
      // a new key in the same partition: Hudi's Java client would pack it into that small base
      // file and rewrite it from the base file alone, dropping the logged update of a
      w.commit(List.of(rec(w, "c", 1, 3)), List.of());
    }
    assertEquals(Map.of("a", 2L, "b", 1L, "c", 1L), baseFileValues());
  }

  @Test
  void mergeOnReadClustersTheFileGroupsOfNewKeys() throws IOException {
    // every commit adds a key (a file group of its own) and logs an update of key a
    HudiSinkSpec spec =
        spec(
            "MERGE_ON_READ",
            Map.of(
                "hoodie.clustering.inline.max.commits", "4",
                "hoodie.compact.inline.max.delta.commits", "12"));
    Map<String, Long> want = new HashMap<>();
    try (HudiTableWriter w = new HudiTableWriter(spec, new org.apache.hadoop.conf.Configuration())) {
      w.open();
      for (int i = 0; i < 12; i++) {
        List<GenericRecord> batch = new ArrayList<>();
        batch.add(rec(w, "n" + i, i, i));
        if (i > 0) {
          batch.add(rec(w, "a", i, i));
        }
        w.commit(batch, List.of());
        want.put("n" + i, (long) i);
      }
    }
    want.put("a", 11L);
    want.put("n0", 0L);
    assertEquals(want, baseFileValues());
    // without clustering there would be one file group per commit
    long groups = fileGroups();
    assertTrue(groups <= 4, groups + " file groups for 12 commits of new keys");
  }

  @Test
  void copyOnWriteUpsertsInPlace() throws IOException {
    HudiSinkSpec spec = spec("COPY_ON_WRITE", Map.of());
    try (HudiTableWriter w = new HudiTableWriter(spec, new org.apache.hadoop.conf.Configuration())) {
      w.open();
      w.commit(List.of(rec(w, "a", 1, 1), rec(w, "b", 1, 1)), List.of());
      w.commit(List.of(rec(w, "a", 2, 2)), List.of());
      w.commit(List.of(rec(w, "c", 1, 3), rec(w, "b", 0, 0)), List.of());
    }
    // b's older version (ts 0 < 1) loses to the stored one: event-time ordering
    assertEquals(Map.of("a", 2L, "b", 1L, "c", 1L), baseFileValues());
  }
}
