package io.gridlake.flink.hudi;

import org.apache.avro.LogicalTypes;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericRecord;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hudi.client.HoodieJavaWriteClient;
import org.apache.hudi.client.WriteStatus;
import org.apache.hudi.client.common.HoodieJavaEngineContext;
import org.apache.hudi.common.config.RecordMergeMode;
import org.apache.hudi.common.config.TypedProperties;
import org.apache.hudi.common.model.HoodieAvroIndexedRecord;
import org.apache.hudi.common.model.HoodieEmptyRecord;
import org.apache.hudi.common.model.HoodieKey;
import org.apache.hudi.common.model.HoodieOperation;
import org.apache.hudi.common.model.HoodieRecord;
import org.apache.hudi.common.model.HoodieTableType;
import org.apache.hudi.common.table.HoodieTableConfig;
import org.apache.hudi.common.table.HoodieTableMetaClient;
import org.apache.hudi.common.util.OrderingValues;
import org.apache.hudi.config.HoodieWriteConfig;
import org.apache.hudi.exception.HoodieWriteConflictException;
import org.apache.hudi.hadoop.fs.HadoopFSUtils;
import org.apache.hudi.keygen.BaseKeyGenerator;
import org.apache.hudi.keygen.factory.HoodieAvroKeyGeneratorFactory;
import org.apache.hudi.storage.StorageConfiguration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * Writes batches of upserts and deletes into one Hudi table through Hudi's Java write client, one
 * Hudi commit per batch. Creates the table on first use and checks an existing table's key,
 * ordering, partition and type configuration against the sink's.
 *
 * <p>Not thread safe; one instance per table and process. Other processes (a backfill) may write
 * the same table when the table's options choose optimistic concurrency control.
 */
public final class HudiTableWriter implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(HudiTableWriter.class);

  /** Options the connector owns: a {@code hoodie.*} option in the DDL cannot override them. */
  static final List<String> CONNECTOR_OWNED =
      List.of(
          "hoodie.table.name",
          "hoodie.base.path",
          "hoodie.datasource.write.recordkey.field",
          "hoodie.datasource.write.partitionpath.field",
          "hoodie.datasource.write.keygenerator.type",
          "hoodie.datasource.write.keygenerator.class",
          "hoodie.table.ordering.fields",
          "hoodie.datasource.write.precombine.field",
          "hoodie.record.merge.mode",
          "hoodie.datasource.write.hive_style_partitioning",
          "hoodie.datasource.write.partitionpath.urlencode",
          "hoodie.embed.timeline.server",
          "hoodie.avro.schema");

  /** Attempts of one commit that lost an optimistic-concurrency conflict. */
  static final int CONFLICT_ATTEMPTS = 5;

  private static final long CONFLICT_PAUSE_MS = 500;

  private final HudiSinkSpec spec;
  private final Configuration hadoopConf;
  private StorageConfiguration<?> storageConf;
  private HoodieJavaWriteClient<?> client;
  private BaseKeyGenerator keyGenerator;
  private long commits;
  private long conflicts;
  private Runnable beforeComplete = () -> {};

  /**
   * Creates a writer; call {@link #open()} before use.
   *
   * @param spec the sink spec
   * @param hadoopConf Hadoop configuration (core-site/hdfs-site from the classpath)
   */
  public HudiTableWriter(HudiSinkSpec spec, Configuration hadoopConf) {
    this.spec = spec;
    this.hadoopConf = hadoopConf;
  }

  /**
   * Creates or validates the table and starts the write client.
   *
   * @throws IOException when the table cannot be created or read
   * @throws IllegalStateException when an existing table's configuration does not match
   */
  public void open() throws IOException {
    storageConf = HadoopFSUtils.getStorageConf(hadoopConf);
    ensureTable();
    TypedProperties keyProps = new TypedProperties();
    keyProps.putAll(writeProperties());
    keyGenerator = (BaseKeyGenerator) HoodieAvroKeyGeneratorFactory.createKeyGenerator(keyProps);
    HoodieWriteConfig config =
        HoodieWriteConfig.newBuilder()
            .withPath(spec.basePath())
            .forTable(spec.tableName())
            .withSchema(spec.avroSchemaJson())
            .withProperties(writeProperties())
            .build();
    client = new HoodieJavaWriteClient<>(new HoodieJavaEngineContext(storageConf), config);
    LOG.info(
        "Hudi writer opened: table={} path={} keys={} ordering={} partition={} keygen={}",
        spec.tableName(),
        spec.basePath(),
        spec.recordKeyFields(),
        spec.orderingField(),
        spec.partitionPathField(),
        spec.keyGeneratorType());
  }

  /**
   * The Hudi key of a record, computed by the key generator recorded in the table config.
   *
   * @param record a record with the table schema
   * @return record key and partition path
   */
  public HoodieKey keyOf(GenericRecord record) {
    return keyGenerator.getKey(record);
  }

  /**
   * Writes one batch as a single Hudi commit and waits for it to complete.
   *
   * <p>A commit that loses an optimistic-concurrency conflict (a backfill changed the same file
   * groups since the commit started) is rolled back and written again, up to {@link
   * #CONFLICT_ATTEMPTS} times: the index is looked up afresh each time and the ordering field
   * decides between versions, so the outcome is what a restart from the last checkpoint would
   * give, without restarting the job.
   *
   * @param upserts records to insert or update, at most one per key
   * @param deletes keys to delete (hard deletes, independent of the ordering value)
   * @return the commit's instant time, or {@code null} when both lists are empty
   * @throws IOException when any record fails or the commit cannot complete; nothing is
   *     committed then and the instant is rolled back
   */
  public String commit(List<GenericRecord> upserts, List<HoodieKey> deletes) throws IOException {
    if (upserts.isEmpty() && deletes.isEmpty()) {
      return null;
    }
    for (int attempt = 1; ; attempt++) {
      try {
        return commitOnce(upserts, deletes);
      } catch (WriteConflict e) {
        conflicts++;
        if (attempt >= CONFLICT_ATTEMPTS) {
          throw new IOException(
              "Hudi write of table "
                  + spec.tableName()
                  + " lost "
                  + attempt
                  + " optimistic-concurrency conflicts in a row; another writer keeps changing"
                  + " the same file groups",
              e.getCause());
        }
        LOG.warn(
            "Hudi commit of table {} conflicted with another writer's commit (attempt {}/{});"
                + " writing it again",
            spec.tableName(),
            attempt,
            CONFLICT_ATTEMPTS,
            e.getCause());
        pause(CONFLICT_PAUSE_MS * attempt);
      }
    }
  }

  @SuppressWarnings({"rawtypes", "unchecked"})
  private String commitOnce(List<GenericRecord> upserts, List<HoodieKey> deletes)
      throws IOException {
    long start = System.currentTimeMillis();
    // built per attempt: Hudi's index tags each record with its location once
    List<HoodieRecord> records = new ArrayList<>(upserts.size() + deletes.size());
    for (GenericRecord rec : upserts) {
      records.add(new HoodieAvroIndexedRecord(keyOf(rec), rec));
    }
    for (HoodieKey key : deletes) {
      // the default ordering value marks a delete that wins over any stored version
      records.add(
          new HoodieEmptyRecord<>(
              key,
              HoodieOperation.DELETE,
              OrderingValues.getDefault(),
              HoodieRecord.HoodieRecordType.AVRO));
    }
    HoodieJavaWriteClient raw = client;
    String instant = raw.startCommit();
    List<WriteStatus> statuses;
    try {
      statuses = raw.upsert(records, instant);
      failOnErrors(instant, statuses);
      beforeComplete.run();
      if (!raw.commit(instant, statuses)) {
        throw new IOException(
            "Hudi commit " + instant + " of table " + spec.tableName() + " did not complete");
      }
    } catch (IOException | RuntimeException e) {
      if (isCompleted(instant)) {
        // Inline compaction, clustering, clean and archive run inside commit(), after the
        // commit completed: rolling the durable commit back would undo the data. A pending
        // compaction or clustering plan is executed again by the next commit.
        LOG.error(
            "Hudi commit {} of table {} completed, but a table service after it failed",
            instant,
            spec.tableName(),
            e);
      } else {
        rollbackQuietly(instant);
        if (isWriteConflict(e)) {
          throw new WriteConflict(e);
        }
        if (e instanceof IOException) {
          throw (IOException) e;
        }
        throw new IOException(
            "Hudi write of table " + spec.tableName() + " (instant " + instant + ") failed", e);
      }
    }
    commits++;
    LOG.info(
        "Hudi commit table={} instant={} upserted={} deleted={} ms={}",
        spec.tableName(),
        instant,
        upserts.size(),
        deletes.size(),
        System.currentTimeMillis() - start);
    return instant;
  }

  /** Whether {@code instant} is a completed instant of the table's timeline. */
  private boolean isCompleted(String instant) {
    try {
      HoodieTableMetaClient meta =
          HoodieTableMetaClient.builder().setConf(storageConf).setBasePath(spec.basePath()).build();
      return meta.getActiveTimeline().filterCompletedInstants().containsInstant(instant);
    } catch (RuntimeException e) {
      LOG.warn("Could not read the timeline of table {}", spec.tableName(), e);
      return false;
    }
  }

  static boolean isWriteConflict(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof HoodieWriteConflictException) {
        return true;
      }
    }
    return false;
  }

  private static void pause(long millis) throws IOException {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      // Flink cancels the task by interrupting it: stop retrying at once
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting to retry a Hudi commit");
    }
  }

  /** A commit that lost an optimistic-concurrency conflict; it was rolled back. */
  private static final class WriteConflict extends IOException {
    private static final long serialVersionUID = 1L;

    WriteConflict(Throwable cause) {
      super(cause);
    }
  }

  /**
   * Sets code to run between a commit's write and its completion (tests: another writer's
   * commit there makes this one conflict).
   */
  void beforeComplete(Runnable hook) {
    this.beforeComplete = hook;
  }

  /** Number of commit attempts that lost a conflict (and were written again). */
  public long conflicts() {
    return conflicts;
  }

  /** Number of commits made by this writer. */
  public long commits() {
    return commits;
  }

  @Override
  public void close() {
    if (client != null) {
      client.close();
      client = null;
    }
  }

  private void failOnErrors(String instant, List<WriteStatus> statuses) throws IOException {
    long errors = 0;
    Throwable first = null;
    for (WriteStatus ws : statuses) {
      if (ws.getGlobalError() != null) {
        errors++;
        first = first == null ? ws.getGlobalError() : first;
      }
      if (ws.hasErrors()) {
        errors += Math.max(ws.getTotalErrorRecords(), ws.getErrors().size());
        if (first == null && !ws.getErrors().isEmpty()) {
          first = ws.getErrors().values().iterator().next();
        }
      }
    }
    if (errors > 0) {
      throw new IOException(
          "Hudi write of table "
              + spec.tableName()
              + " (instant "
              + instant
              + ") had "
              + errors
              + " failed records; nothing was committed",
          first);
    }
  }

  private void rollbackQuietly(String instant) {
    try {
      client.rollback(instant);
    } catch (RuntimeException e) {
      // the next writer rolls failed instants back eagerly (hoodie.clean.failed.writes.policy)
      LOG.warn("Rollback of Hudi instant {} of table {} failed", instant, spec.tableName(), e);
    }
  }

  /** Write properties: GridLake defaults, then the DDL's hoodie.* options, then owned keys. */
  Properties writeProperties() {
    Properties p = new Properties();
    p.putAll(defaultProperties());
    if (spec.isMergeOnRead()) {
      p.putAll(mergeOnReadDefaults());
    }
    p.putAll(spec.hoodieOptions());
    p.putAll(ownedProperties());
    if (spec.isMergeOnRead()) {
      p.putAll(MERGE_ON_READ_OWNED);
    }
    return p;
  }

  /** Defaults a {@code hoodie.*} option in the DDL may override. */
  static Map<String, String> defaultProperties() {
    Map<String, String> d = new LinkedHashMap<>();
    // Metadata table off: the Java client's metadata writer is not what GridLake exercises, and
    // file listing is exact on HDFS. Spark writers must set the same (docs/connectors.md).
    d.put("hoodie.metadata.enable", "false");
    // SIMPLE index: looks keys up in the base files of the affected partitions; correct across
    // restarts and across engines (no in-memory state).
    d.put("hoodie.index.type", "SIMPLE");
    d.put("hoodie.clean.policy", "KEEP_LATEST_COMMITS");
    d.put("hoodie.clean.automatic", "true");
    d.put("hoodie.clean.commits.retained", "10");
    d.put("hoodie.archive.automatic", "true");
    d.put("hoodie.keep.min.commits", "20");
    d.put("hoodie.keep.max.commits", "30");
    // markers written next to the data; the timeline-server based ones need the embedded server
    d.put("hoodie.write.markers.type", "DIRECT");
    d.put("hoodie.combine.before.upsert", "true");
    return d;
  }

  /**
   * MERGE_ON_READ defaults: compaction runs inline, in the writer, after a commit; so does the
   * clustering that merges the small file groups new keys go to (see {@link #MERGE_ON_READ_OWNED}).
   */
  static Map<String, String> mergeOnReadDefaults() {
    Map<String, String> d = new LinkedHashMap<>();
    d.put("hoodie.compact.inline", "true");
    d.put("hoodie.compact.inline.max.delta.commits", "5");
    d.put("hoodie.clustering.inline", "true");
    d.put("hoodie.clustering.inline.max.commits", "10");
    // Hudi's defaults name the Spark implementations, absent from the Java client
    d.put(
        "hoodie.clustering.plan.strategy.class",
        "org.apache.hudi.client.clustering.plan.strategy.JavaSizeBasedClusteringPlanStrategy");
    d.put(
        "hoodie.clustering.execution.strategy.class",
        "org.apache.hudi.client.clustering.run.strategy.JavaSortAndSizeExecutionStrategy");
    return d;
  }

  /**
   * MERGE_ON_READ settings a DDL cannot change (the factory rejects other values): no
   * small-file packing of inserts.
   *
   * <p>Hudi 1.2.1's Java client packs new keys into the latest small base file of a file group
   * without looking at that group's log files, and rewrites the base file from the base file
   * alone, so every update logged since the last compaction is lost (its Spark client skips
   * file groups with log files). HudiTableWriterTest reproduces it. New keys therefore go to new
   * file groups, and inline clustering merges small file groups instead.
   */
  static final Map<String, String> MERGE_ON_READ_OWNED =
      Map.of("hoodie.parquet.small.file.limit", "0");

  private Map<String, String> ownedProperties() {
    Map<String, String> o = new LinkedHashMap<>();
    o.put("hoodie.table.name", spec.tableName());
    o.put("hoodie.base.path", spec.basePath());
    o.put("hoodie.datasource.write.recordkey.field", String.join(",", spec.recordKeyFields()));
    o.put(
        "hoodie.datasource.write.partitionpath.field",
        spec.isPartitioned() ? spec.partitionPathField() : "");
    o.put("hoodie.datasource.write.keygenerator.type", spec.keyGeneratorType());
    o.put("hoodie.table.ordering.fields", spec.orderingField());
    o.put("hoodie.record.merge.mode", RecordMergeMode.EVENT_TIME_ORDERING.name());
    o.put("hoodie.datasource.write.hive_style_partitioning", "false");
    o.put("hoodie.datasource.write.partitionpath.urlencode", "false");
    // hudi-timeline-service is not published for this Hudi version; the client works without it
    o.put("hoodie.embed.timeline.server", "false");
    return o;
  }

  private void ensureTable() throws IOException {
    Path base = new Path(spec.basePath());
    FileSystem fs = base.getFileSystem(hadoopConf);
    Path props = new Path(new Path(base, HoodieTableMetaClient.METAFOLDER_NAME), "hoodie.properties");
    if (!fs.exists(props)) {
      HoodieTableMetaClient.TableBuilder builder =
          HoodieTableMetaClient.newTableBuilder()
              .setTableType(tableType())
              .setTableName(spec.tableName())
              .setRecordKeyFields(String.join(",", spec.recordKeyFields()))
              .setOrderingFields(spec.orderingField())
              .setRecordMergeMode(RecordMergeMode.EVENT_TIME_ORDERING)
              .setKeyGeneratorClassProp(spec.keyGeneratorClass())
              .setBaseFileFormat("PARQUET")
              .setPopulateMetaFields(true)
              .setHiveStylePartitioningEnable(false)
              .setUrlEncodePartitioning(false)
              .setTableCreateSchema(spec.avroSchemaJson());
      if (spec.isPartitioned()) {
        builder.setPartitionFields(spec.partitionPathField());
      }
      builder.initTable(storageConf, spec.basePath());
      LOG.info("Created Hudi table {} at {}", spec.tableName(), spec.basePath());
      return;
    }
    HoodieTableMetaClient meta =
        HoodieTableMetaClient.builder().setConf(storageConf).setBasePath(spec.basePath()).build();
    validate(meta.getTableConfig());
  }

  private void validate(HoodieTableConfig tc) {
    List<String> problems = new ArrayList<>();
    List<String> keys = tc.getRecordKeyFields().map(Arrays::asList).orElse(Collections.emptyList());
    if (!keys.equals(spec.recordKeyFields())) {
      problems.add("record key fields " + keys + " (sink: " + spec.recordKeyFields() + ")");
    }
    List<String> ordering = tc.getOrderingFields();
    if (ordering == null || !ordering.equals(List.of(spec.orderingField()))) {
      problems.add("ordering fields " + ordering + " (sink: [" + spec.orderingField() + "])");
    }
    List<String> partitions =
        tc.getPartitionFields().map(Arrays::asList).orElse(Collections.emptyList());
    List<String> wanted =
        spec.isPartitioned() ? List.of(spec.partitionPathField()) : Collections.emptyList();
    if (!partitions.equals(wanted)) {
      problems.add("partition fields " + partitions + " (sink: " + wanted + ")");
    }
    if (tc.getTableType() != tableType()) {
      problems.add("table type " + tc.getTableType() + " (sink: " + tableType() + ")");
    }
    if (tc.getRecordMergeMode() != RecordMergeMode.EVENT_TIME_ORDERING) {
      problems.add(
          "record merge mode " + tc.getRecordMergeMode() + " (sink: EVENT_TIME_ORDERING)");
    }
    tc.getTableCreateSchema()
        .ifPresent(
            created -> {
              for (String field : timestampMillisFields(created.toAvroSchema())) {
                // written before timestamps were stored in Spark's unit: the same row would get
                // a second record key (millis vs micros digits) instead of being upserted
                problems.add(
                    "column " + field + " stored as timestamp-millis (sink: timestamp-micros;"
                        + " the table predates GridLake's microsecond timestamps: recreate it"
                        + " or rewrite it with a backfill into a new table)");
              }
            });
    if (!problems.isEmpty()) {
      throw new IllegalStateException(
          "Existing Hudi table "
              + spec.tableName()
              + " at "
              + spec.basePath()
              + " does not match the sink definition: "
              + String.join("; ", problems));
    }
  }

  /** Top-level fields of {@code schema} (nullable or not) with logical type timestamp-millis. */
  static List<String> timestampMillisFields(Schema schema) {
    List<String> out = new ArrayList<>();
    for (Schema.Field f : schema.getFields()) {
      Schema type = f.schema();
      if (type.getType() == Schema.Type.UNION) {
        for (Schema branch : type.getTypes()) {
          if (branch.getType() != Schema.Type.NULL) {
            type = branch;
          }
        }
      }
      if (type.getLogicalType() instanceof LogicalTypes.TimestampMillis) {
        out.add(f.name());
      }
    }
    return out;
  }

  private HoodieTableType tableType() {
    return HoodieTableType.valueOf(spec.tableType());
  }

  /** The Avro schema records must have. */
  public Schema schema() {
    return new Schema.Parser().parse(spec.avroSchemaJson());
  }
}
