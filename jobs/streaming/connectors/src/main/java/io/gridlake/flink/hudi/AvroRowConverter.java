package io.gridlake.flink.hudi;

import io.gridlake.flink.common.ConnectorTypes;

import org.apache.avro.JsonProperties;
import org.apache.avro.LogicalTypes;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;

/**
 * Maps Flink {@link RowData} to Avro {@link GenericRecord}s with the table's schema.
 *
 * <p>Type mapping: STRING/VARCHAR/CHAR to string, INT to int, BIGINT to long, DOUBLE to double,
 * FLOAT to float, BOOLEAN to boolean, TIMESTAMP(p&lt;=3) and TIMESTAMP_LTZ(p&lt;=3) to long with
 * logical type timestamp-micros (UTC epoch microseconds), DATE to int with logical type date. Every
 * field is a nullable union (null first, default null) except the record key columns.
 *
 * <p>Microseconds, not milliseconds, because that is what Spark writes for its TimestampType: Hudi
 * renders a TIMESTAMP record key from the stored long and compares ordering values as stored, so a
 * table written by both engines (stream and backfill) needs one unit for both, or the same row gets
 * two keys ({@code 1717372800000} and {@code 1717372800000000}) and orderings compare across units.
 */
public final class AvroRowConverter implements Serializable {

  private static final long serialVersionUID = 1L;

  private final RowType rowType;
  private final String schemaJson;
  private final FieldReader[] readers;
  private final boolean[] required;
  private final String[] names;
  private transient Schema schema;

  /**
   * Creates a converter for rows of the given type.
   *
   * @param rowType physical row type
   * @param schemaJson the schema built by {@link #avroSchema}
   * @param keyFields record key columns (non-null)
   */
  public AvroRowConverter(RowType rowType, String schemaJson, Collection<String> keyFields) {
    this.rowType = rowType;
    this.schemaJson = schemaJson;
    int n = rowType.getFieldCount();
    this.readers = new FieldReader[n];
    this.required = new boolean[n];
    this.names = rowType.getFieldNames().toArray(new String[0]);
    for (int i = 0; i < n; i++) {
      readers[i] = reader(names[i], rowType.getTypeAt(i));
      required[i] = keyFields.contains(names[i]);
    }
  }

  /** The Avro schema the records are built with. */
  public Schema schema() {
    if (schema == null) {
      schema = new Schema.Parser().parse(schemaJson);
    }
    return schema;
  }

  /**
   * Converts one row; the result shares no mutable state with the row (safe under object reuse).
   *
   * @param row the row
   * @return a new record
   */
  public GenericRecord convert(RowData row) {
    GenericData.Record rec = new GenericData.Record(schema());
    for (int i = 0; i < readers.length; i++) {
      if (row.isNullAt(i)) {
        if (required[i]) {
          throw new IllegalArgumentException("Record key column '" + names[i] + "' is null");
        }
        rec.put(i, null);
      } else {
        rec.put(i, readers[i].read(row, i));
      }
    }
    return rec;
  }

  /**
   * Builds the Avro schema of the table (record {@code <table>_record}, namespace
   * {@code hoodie.<table>}, the naming Hudi's Spark writer uses).
   *
   * @param tableName Hudi table name
   * @param rowType physical row type
   * @param keyFields record key columns, which are not nullable
   * @return the schema
   * @throws ValidationException naming the column when a type is not supported
   */
  public static Schema avroSchema(String tableName, RowType rowType, Collection<String> keyFields) {
    String base = tableName.replaceAll("[^A-Za-z0-9_]", "_");
    if (base.isEmpty() || Character.isDigit(base.charAt(0))) {
      base = "_" + base;
    }
    List<Schema.Field> fields = new ArrayList<>();
    for (RowType.RowField f : rowType.getFields()) {
      Schema type = avroType(f.getName(), f.getType());
      if (keyFields.contains(f.getName())) {
        fields.add(new Schema.Field(f.getName(), type, null, (Object) null));
      } else {
        Schema nullable = Schema.createUnion(Schema.create(Schema.Type.NULL), type);
        fields.add(new Schema.Field(f.getName(), nullable, null, JsonProperties.NULL_VALUE));
      }
    }
    return Schema.createRecord(base + "_record", null, "hoodie." + base, false, fields);
  }

  private static Schema avroType(String column, LogicalType type) {
    switch (type.getTypeRoot()) {
      case CHAR:
      case VARCHAR:
        return Schema.create(Schema.Type.STRING);
      case BOOLEAN:
        return Schema.create(Schema.Type.BOOLEAN);
      case INTEGER:
        return Schema.create(Schema.Type.INT);
      case BIGINT:
        return Schema.create(Schema.Type.LONG);
      case FLOAT:
        return Schema.create(Schema.Type.FLOAT);
      case DOUBLE:
        return Schema.create(Schema.Type.DOUBLE);
      case DATE:
        return LogicalTypes.date().addToSchema(Schema.create(Schema.Type.INT));
      case TIMESTAMP_WITHOUT_TIME_ZONE:
      case TIMESTAMP_WITH_LOCAL_TIME_ZONE:
        if (ConnectorTypes.timestampPrecision(type) > 3) {
          throw unsupported(column, type, " (use TIMESTAMP(3) or TIMESTAMP_LTZ(3))");
        }
        return LogicalTypes.timestampMicros().addToSchema(Schema.create(Schema.Type.LONG));
      default:
        throw unsupported(column, type, "");
    }
  }

  private static ValidationException unsupported(String column, LogicalType type, String hint) {
    return new ValidationException(
        "Column '"
            + column
            + "' has type "
            + type.asSummaryString()
            + ", which the 'gridlake-hudi' connector does not support"
            + hint
            + ". Supported: STRING/VARCHAR, INT, BIGINT, DOUBLE, FLOAT, BOOLEAN, TIMESTAMP(3),"
            + " TIMESTAMP_LTZ(3), DATE.");
  }

  private static FieldReader reader(String column, LogicalType type) {
    switch (type.getTypeRoot()) {
      case CHAR:
      case VARCHAR:
        return (row, pos) -> row.getString(pos).toString();
      case BOOLEAN:
        return RowData::getBoolean;
      case INTEGER:
      case DATE:
        return RowData::getInt;
      case BIGINT:
        return RowData::getLong;
      case FLOAT:
        return RowData::getFloat;
      case DOUBLE:
        return RowData::getDouble;
      case TIMESTAMP_WITHOUT_TIME_ZONE:
      case TIMESTAMP_WITH_LOCAL_TIME_ZONE:
        {
          int precision = ConnectorTypes.timestampPrecision(type);
          return (row, pos) -> {
            TimestampData t = row.getTimestamp(pos, precision);
            return t.getMillisecond() * 1000L + t.getNanoOfMillisecond() / 1000;
          };
        }
      default:
        throw unsupported(column, type, "");
    }
  }

  /** Reads one field of a row as its Avro value. */
  @FunctionalInterface
  private interface FieldReader extends Serializable {
    Object read(RowData row, int pos);
  }

  /** The row type this converter reads. */
  public RowType rowType() {
    return rowType;
  }
}
