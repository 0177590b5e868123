package io.gridlake.flink.common;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;

import java.util.Collection;
import java.util.function.LongSupplier;

/**
 * Sets one timestamp column of every upserted row to the time the sink writes it.
 *
 * <p>Why the sink and not the SQL: a column computed with the current time in an updating Flink
 * SQL stream is recomputed for the retraction too, so an UPDATE_BEFORE no longer equals the row
 * it retracts. Flink's sink upsert materializer matches retractions by value: it then misses
 * every one (logging "The state is cleared because of state ttl"), keeps every version of the key
 * in its state, and when a retraction does match (same millisecond) it re-emits an older version
 * with that version's older timestamp, which a sink ordering by that column rejects. The SQL
 * therefore carries a constant and the sink stamps the column here. Stamps never decrease within
 * one writer, so a later write of a key never has a smaller stamp than an earlier one (equal
 * stamps go to the later write in both sinks and in Hudi's merge).
 */
public final class RowStamper {

  /** Connector option naming the stamped column (Hudi and Redis sinks). */
  public static final ConfigOption<String> STAMP_FIELD =
      ConfigOptions.key("stamp.field")
          .stringType()
          .noDefaultValue()
          .withDescription(
              "Optional TIMESTAMP/TIMESTAMP_LTZ column set to the sink's write time on every"
                  + " upsert (never decreasing per writer); the value the query computed is"
                  + " replaced.");

  private final int pos;
  private final RowData.FieldGetter[] getters;
  private final LongSupplier clock;
  private long last = Long.MIN_VALUE;

  /**
   * Creates a stamper.
   *
   * @param rowType the sink's physical row type
   * @param field the stamped column, or {@code null} to pass rows through unchanged
   */
  public RowStamper(RowType rowType, String field) {
    this(rowType, field, System::currentTimeMillis);
  }

  /**
   * Creates a stamper with a given clock (tests).
   *
   * @param rowType the sink's physical row type
   * @param field the stamped column, or {@code null} to pass rows through unchanged
   * @param clock epoch milliseconds
   */
  public RowStamper(RowType rowType, String field, LongSupplier clock) {
    this.clock = clock;
    if (field == null) {
      this.pos = -1;
      this.getters = new RowData.FieldGetter[0];
      return;
    }
    this.pos = rowType.getFieldIndex(field);
    if (pos < 0) {
      throw new IllegalArgumentException(
          "stamp field '" + field + "' is not a column of " + rowType.getFieldNames());
    }
    this.getters = new RowData.FieldGetter[rowType.getFieldCount()];
    for (int i = 0; i < getters.length; i++) {
      getters[i] = RowData.createFieldGetter(rowType.getTypeAt(i), i);
    }
  }

  /**
   * The stamp option of a sink DDL, checked against the schema.
   *
   * @param options connector options
   * @param schema resolved schema
   * @param keyColumns columns that identify a row (key, partition): never stamped, since a new
   *     value per write would make every write a new row
   * @return the stamped column, or {@code null} when the option is not set
   * @throws ValidationException when the column is missing, a key column or not a timestamp
   */
  public static String stampField(
      ReadableConfig options, ResolvedSchema schema, Collection<String> keyColumns) {
    String field = options.getOptional(STAMP_FIELD).map(String::trim).orElse("");
    if (field.isEmpty()) {
      return null;
    }
    if (keyColumns.contains(field)) {
      throw new ValidationException(
          "'stamp.field' column '" + field + "' identifies rows (" + keyColumns
              + "); stamp a value column such as updated_ts.");
    }
    Column col = ConnectorTypes.requirePhysicalColumn(schema, field, STAMP_FIELD.key());
    LogicalType type = col.getDataType().getLogicalType();
    if (!ConnectorTypes.isTimestamp(type)) {
      throw new ValidationException(
          "'stamp.field' column '"
              + field
              + "' has type "
              + type.asSummaryString()
              + "; it must be TIMESTAMP or TIMESTAMP_LTZ.");
    }
    return field;
  }

  /**
   * The stamp a write gets now: the write time, never below an earlier stamp of this stamper.
   * The Redis sink gives it to a delete as its ordering value.
   *
   * @return epoch milliseconds
   */
  public long next() {
    last = Math.max(last, clock.getAsLong());
    return last;
  }

  /**
   * The row with the stamp column set to the write time (a copy), or the row itself when no
   * column is stamped.
   *
   * @param row an INSERT or UPDATE_AFTER row
   * @return the stamped row, same row kind
   */
  public RowData stamp(RowData row) {
    if (pos < 0) {
      return row;
    }
    next();
    GenericRowData out = new GenericRowData(row.getRowKind(), getters.length);
    for (int i = 0; i < getters.length; i++) {
      out.setField(i, i == pos ? TimestampData.fromEpochMillis(last) : getters[i].getFieldOrNull(row));
    }
    return out;
  }
}
