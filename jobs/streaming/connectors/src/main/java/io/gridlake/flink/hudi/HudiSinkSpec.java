package io.gridlake.flink.hudi;

import org.apache.flink.table.types.logical.RowType;

import java.io.Serializable;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;

/**
 * Everything a Hudi sink writer needs, validated at planning time and shipped to the task.
 *
 * <p>The Avro schema travels as JSON (Avro's {@code Schema} is not {@link Serializable}).
 */
public final class HudiSinkSpec implements Serializable {

  private static final long serialVersionUID = 1L;

  private final String basePath;
  private final String tableName;
  private final String tableType;
  private final List<String> recordKeyFields;
  private final String orderingField;
  private final String partitionPathField;
  private final RowType rowType;
  private final String avroSchemaJson;
  private final int maxBufferedRows;
  private final Map<String, String> hoodieOptions;
  private final String stampField;

  /**
   * Creates the spec.
   *
   * @param basePath table base path
   * @param tableName Hudi table name
   * @param tableType COPY_ON_WRITE or MERGE_ON_READ
   * @param recordKeyFields record key columns, in key order
   * @param orderingField ordering column
   * @param partitionPathField partition column, or {@code null} when unpartitioned
   * @param rowType physical row type the sink receives
   * @param avroSchemaJson Avro schema (JSON) of the table's data columns
   * @param maxBufferedRows buffered keys that force an extra commit
   * @param hoodieOptions {@code hoodie.*} options from the DDL
   * @param stampField column set to the write time on every upsert, or {@code null}
   */
  public HudiSinkSpec(
      String basePath,
      String tableName,
      String tableType,
      List<String> recordKeyFields,
      String orderingField,
      String partitionPathField,
      RowType rowType,
      String avroSchemaJson,
      int maxBufferedRows,
      Map<String, String> hoodieOptions,
      String stampField) {
    this.basePath = Objects.requireNonNull(basePath);
    this.tableName = Objects.requireNonNull(tableName);
    this.tableType = Objects.requireNonNull(tableType);
    this.recordKeyFields = List.copyOf(recordKeyFields);
    this.orderingField = Objects.requireNonNull(orderingField);
    this.partitionPathField = partitionPathField;
    this.rowType = Objects.requireNonNull(rowType);
    this.avroSchemaJson = Objects.requireNonNull(avroSchemaJson);
    this.maxBufferedRows = maxBufferedRows;
    this.hoodieOptions = Collections.unmodifiableMap(new TreeMap<>(hoodieOptions));
    this.stampField = stampField;
  }

  public String basePath() {
    return basePath;
  }

  public String tableName() {
    return tableName;
  }

  /** COPY_ON_WRITE or MERGE_ON_READ. */
  public String tableType() {
    return tableType;
  }

  public boolean isMergeOnRead() {
    return "MERGE_ON_READ".equals(tableType);
  }

  public List<String> recordKeyFields() {
    return recordKeyFields;
  }

  public String orderingField() {
    return orderingField;
  }

  /** Partition column, or {@code null} for an unpartitioned table. */
  public String partitionPathField() {
    return partitionPathField;
  }

  public boolean isPartitioned() {
    return partitionPathField != null;
  }

  public RowType rowType() {
    return rowType;
  }

  public String avroSchemaJson() {
    return avroSchemaJson;
  }

  public int maxBufferedRows() {
    return maxBufferedRows;
  }

  public Map<String, String> hoodieOptions() {
    return hoodieOptions;
  }

  /** Column stamped with the write time (see {@code RowStamper}), or {@code null}. */
  public String stampField() {
    return stampField;
  }

  /**
   * Key generator Hudi records in the table config, matching how the keys are built.
   *
   * @return SIMPLE (one key column, partitioned), COMPLEX (several key columns, partitioned) or
   *     NON_PARTITION (unpartitioned)
   */
  public String keyGeneratorType() {
    if (!isPartitioned()) {
      return "NON_PARTITION";
    }
    return recordKeyFields.size() == 1 ? "SIMPLE" : "COMPLEX";
  }

  /** Spark-side key generator class equivalent to {@link #keyGeneratorType()}. */
  public String keyGeneratorClass() {
    switch (keyGeneratorType()) {
      case "SIMPLE":
        return "org.apache.hudi.keygen.SimpleKeyGenerator";
      case "COMPLEX":
        return "org.apache.hudi.keygen.ComplexKeyGenerator";
      default:
        return "org.apache.hudi.keygen.NonpartitionedKeyGenerator";
    }
  }

  @Override
  public String toString() {
    return "HudiSinkSpec{table="
        + tableName
        + ", type="
        + tableType
        + ", path="
        + basePath
        + ", keys="
        + recordKeyFields
        + ", ordering="
        + orderingField
        + ", partition="
        + partitionPathField
        + "}";
  }
}
