package io.gridlake.flink.hudi;

import io.gridlake.flink.common.ConnectorTypes;
import io.gridlake.flink.common.RowStamper;

import org.apache.avro.Schema;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.factories.DynamicTableSinkFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import org.apache.flink.table.types.logical.RowType;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/** Factory of {@code 'connector' = 'gridlake-hudi'}. */
public final class HudiDynamicTableFactory implements DynamicTableSinkFactory {

  public static final String IDENTIFIER = "gridlake-hudi";

  @Override
  public String factoryIdentifier() {
    return IDENTIFIER;
  }

  @Override
  public Set<ConfigOption<?>> requiredOptions() {
    Set<ConfigOption<?>> s = new HashSet<>();
    s.add(HudiOptions.PATH);
    s.add(HudiOptions.TABLE_NAME);
    s.add(HudiOptions.RECORD_KEY_FIELDS);
    s.add(HudiOptions.ORDERING_FIELD);
    return s;
  }

  @Override
  public Set<ConfigOption<?>> optionalOptions() {
    Set<ConfigOption<?>> s = new HashSet<>();
    s.add(HudiOptions.PARTITION_PATH_FIELD);
    s.add(HudiOptions.TABLE_TYPE);
    s.add(HudiOptions.WRITE_BATCH_MAX_ROWS);
    s.add(RowStamper.STAMP_FIELD);
    return s;
  }

  @Override
  public DynamicTableSink createDynamicTableSink(Context context) {
    FactoryUtil.TableFactoryHelper helper = FactoryUtil.createTableFactoryHelper(this, context);
    helper.validateExcept(HudiOptions.HOODIE_PREFIX);
    ReadableConfig options = helper.getOptions();
    ResolvedSchema schema = context.getCatalogTable().getResolvedSchema();
    RowType rowType = (RowType) context.getPhysicalRowDataType().getLogicalType();
    Map<String, String> hoodie = new TreeMap<>();
    for (Map.Entry<String, String> e : context.getCatalogTable().getOptions().entrySet()) {
      if (e.getKey().startsWith(HudiOptions.HOODIE_PREFIX)) {
        hoodie.put(e.getKey(), e.getValue());
      }
    }
    return new HudiDynamicTableSink(buildSpec(options, schema, rowType, hoodie));
  }

  /**
   * Validates the DDL and options and builds the sink spec.
   *
   * @param options connector options
   * @param schema resolved schema
   * @param rowType physical row type
   * @param hoodieOptions {@code hoodie.*} options
   * @return the spec
   * @throws ValidationException with a message naming the offending option or column
   */
  static HudiSinkSpec buildSpec(
      ReadableConfig options,
      ResolvedSchema schema,
      RowType rowType,
      Map<String, String> hoodieOptions) {
    String tableType = options.get(HudiOptions.TABLE_TYPE).trim().toUpperCase(Locale.ROOT);
    if (!tableType.equals("COPY_ON_WRITE") && !tableType.equals("MERGE_ON_READ")) {
      throw new ValidationException(
          "Unknown 'table.type' '"
              + tableType
              + "'; supported: 'COPY_ON_WRITE' (default), 'MERGE_ON_READ'.");
    }
    List<String> pk = ConnectorTypes.requirePrimaryKey(schema, HudiDynamicTableFactory.IDENTIFIER);
    List<String> keys = ConnectorTypes.splitFields(options.get(HudiOptions.RECORD_KEY_FIELDS));
    if (keys.isEmpty()) {
      throw new ValidationException("'record.key.fields' must name at least one column.");
    }
    for (String k : keys) {
      ConnectorTypes.requirePhysicalColumn(schema, k, HudiOptions.RECORD_KEY_FIELDS.key());
    }
    ConnectorTypes.requireSameColumns(pk, keys, HudiOptions.RECORD_KEY_FIELDS.key());

    String ordering = options.get(HudiOptions.ORDERING_FIELD).trim();
    Column orderingCol =
        ConnectorTypes.requirePhysicalColumn(schema, ordering, HudiOptions.ORDERING_FIELD.key());
    LogicalType ot = orderingCol.getDataType().getLogicalType();
    if (!(ConnectorTypes.isOneOf(
            ot,
            LogicalTypeRoot.INTEGER,
            LogicalTypeRoot.BIGINT,
            LogicalTypeRoot.FLOAT,
            LogicalTypeRoot.DOUBLE,
            LogicalTypeRoot.DATE)
        || ConnectorTypes.isTimestamp(ot))) {
      throw new ValidationException(
          "'ordering.field' column '"
              + ordering
              + "' has type "
              + ot.asSummaryString()
              + "; it must be INT, BIGINT, FLOAT, DOUBLE, DATE, TIMESTAMP(3) or TIMESTAMP_LTZ(3).");
    }
    String partition = options.getOptional(HudiOptions.PARTITION_PATH_FIELD).orElse("").trim();
    if (partition.isEmpty()) {
      partition = null;
    } else {
      if (partition.contains(",")) {
        throw new ValidationException(
            "'partition.path.field' takes a single column, got '" + partition + "'.");
      }
      Column pc =
          ConnectorTypes.requirePhysicalColumn(
              schema, partition, HudiOptions.PARTITION_PATH_FIELD.key());
      LogicalType pt = pc.getDataType().getLogicalType();
      if (!ConnectorTypes.isOneOf(pt, LogicalTypeRoot.VARCHAR, LogicalTypeRoot.CHAR)) {
        throw new ValidationException(
            "'partition.path.field' column '"
                + partition
                + "' has type "
                + pt.asSummaryString()
                + "; it must be STRING (its value is used verbatim as the partition path).");
      }
    }

    int maxRows = options.get(HudiOptions.WRITE_BATCH_MAX_ROWS);
    if (maxRows < 1) {
      throw new ValidationException("'write.batch.max.rows' must be at least 1.");
    }
    for (String owned : HudiTableWriter.CONNECTOR_OWNED) {
      if (hoodieOptions.containsKey(owned)) {
        throw new ValidationException(
            "Option '"
                + owned
                + "' is set by the gridlake-hudi connector from its own options; remove it from"
                + " the DDL.");
      }
    }
    if (tableType.equals("MERGE_ON_READ")) {
      HudiTableWriter.MERGE_ON_READ_OWNED.forEach(
          (key, value) -> {
            if (hoodieOptions.containsKey(key) && !hoodieOptions.get(key).trim().equals(value)) {
              throw new ValidationException(
                  "Option '"
                      + key
                      + "' must be "
                      + value
                      + " for a MERGE_ON_READ table: Hudi's Java client would pack new keys into"
                      + " small base files without their log files and lose logged updates.");
            }
          });
    }
    String tableName = options.get(HudiOptions.TABLE_NAME).trim();
    String path = options.get(HudiOptions.PATH).trim();
    if (tableName.isEmpty() || path.isEmpty()) {
      throw new ValidationException("'path' and 'table.name' must not be empty.");
    }
    Schema avro = AvroRowConverter.avroSchema(tableName, rowType, keys);
    List<String> identifying = new ArrayList<>(keys);
    if (partition != null) {
      identifying.add(partition);
    }
    return new HudiSinkSpec(
        path, tableName, tableType, keys, ordering, partition, rowType, avro.toString(), maxRows,
        hoodieOptions, RowStamper.stampField(options, schema, identifying));
  }
}
