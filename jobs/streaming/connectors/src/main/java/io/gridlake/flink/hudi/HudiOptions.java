package io.gridlake.flink.hudi;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;

/** Options of the {@code 'gridlake-hudi'} connector. Any {@code hoodie.*} key is passed through. */
public final class HudiOptions {

  private HudiOptions() {}

  /** Prefix of options forwarded verbatim into the Hudi write config. */
  public static final String HOODIE_PREFIX = "hoodie.";

  public static final ConfigOption<String> PATH =
      ConfigOptions.key("path")
          .stringType()
          .noDefaultValue()
          .withDescription(
              "Base path of the Hudi table, e.g. hdfs://127.0.0.1:8020/gridlake/lake/ods/x or"
                  + " file:///tmp/x.");

  public static final ConfigOption<String> TABLE_NAME =
      ConfigOptions.key("table.name")
          .stringType()
          .noDefaultValue()
          .withDescription("Hudi table name (hoodie.table.name).");

  public static final ConfigOption<String> RECORD_KEY_FIELDS =
      ConfigOptions.key("record.key.fields")
          .stringType()
          .noDefaultValue()
          .withDescription(
              "Comma list of record key columns; must match the DDL's PRIMARY KEY columns.");

  public static final ConfigOption<String> ORDERING_FIELD =
      ConfigOptions.key("ordering.field")
          .stringType()
          .noDefaultValue()
          .withDescription(
              "Column ordering two versions of a key: the higher value wins (EVENT_TIME_ORDERING).");

  public static final ConfigOption<String> PARTITION_PATH_FIELD =
      ConfigOptions.key("partition.path.field")
          .stringType()
          .noDefaultValue()
          .withDescription(
              "Optional STRING column whose value is used verbatim as the partition path.");

  public static final ConfigOption<String> TABLE_TYPE =
      ConfigOptions.key("table.type")
          .stringType()
          .defaultValue("COPY_ON_WRITE")
          .withDescription(
              "COPY_ON_WRITE (default) or MERGE_ON_READ (updates and deletes go to log files,"
                  + " compacted inline every hoodie.compact.inline.max.delta.commits commits).");

  public static final ConfigOption<Integer> WRITE_BATCH_MAX_ROWS =
      ConfigOptions.key("write.batch.max.rows")
          .intType()
          .defaultValue(50_000)
          .withDescription(
              "Distinct keys buffered before an extra Hudi commit is made between checkpoints.");
}
