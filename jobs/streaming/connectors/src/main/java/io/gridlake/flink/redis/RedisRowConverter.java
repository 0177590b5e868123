package io.gridlake.flink.redis;

import io.gridlake.flink.common.ConnectorTypes;

import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.DecimalType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;

import java.io.Serializable;
import java.time.LocalDate;
import java.util.List;

/**
 * Renders rows as Redis hash fields: every value as a string, TIMESTAMP/TIMESTAMP_LTZ as epoch
 * milliseconds, DATE as ISO yyyy-MM-dd, DECIMAL in plain notation.
 */
public final class RedisRowConverter implements Serializable {

  private static final long serialVersionUID = 1L;

  /** Separator between primary key values in the key suffix. */
  public static final String KEY_SEPARATOR = "|";

  private final String[] names;
  private final FieldFormatter[] formatters;
  private final int[] keyPositions;
  private final int scorePos;
  private final ScoreReader scoreReader;

  /**
   * Creates a converter.
   *
   * @param rowType physical row type
   * @param keyFields primary key columns
   * @param scoreField index score column or {@code null}
   */
  public RedisRowConverter(RowType rowType, List<String> keyFields, String scoreField) {
    this.names = rowType.getFieldNames().toArray(new String[0]);
    this.formatters = new FieldFormatter[names.length];
    for (int i = 0; i < names.length; i++) {
      formatters[i] = formatter(names[i], rowType.getTypeAt(i));
    }
    this.keyPositions = new int[keyFields.size()];
    for (int i = 0; i < keyPositions.length; i++) {
      keyPositions[i] = rowType.getFieldIndex(keyFields.get(i));
    }
    if (scoreField == null) {
      this.scorePos = -1;
      this.scoreReader = null;
    } else {
      this.scorePos = rowType.getFieldIndex(scoreField);
      this.scoreReader = scoreReader(scoreField, rowType.getTypeAt(scorePos));
    }
  }

  /** Field names, in row order. */
  public String[] names() {
    return names;
  }

  /**
   * The key suffix of a row: its primary key values joined by {@code |}.
   *
   * @param row the row
   * @return suffix appended to the key prefix
   */
  public String keySuffix(RowData row) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < keyPositions.length; i++) {
      int pos = keyPositions[i];
      if (row.isNullAt(pos)) {
        throw new IllegalArgumentException("Primary key column '" + names[pos] + "' is null");
      }
      if (i > 0) {
        sb.append(KEY_SEPARATOR);
      }
      sb.append(formatters[pos].format(row, pos));
    }
    return sb.toString();
  }

  /**
   * Value of one field as a string, or {@code null} when the field is null.
   *
   * @param row the row
   * @param pos field position
   * @return the string value or null
   */
  public String value(RowData row, int pos) {
    return row.isNullAt(pos) ? null : formatters[pos].format(row, pos);
  }

  /**
   * Index score of a row.
   *
   * @param row the row
   * @return the score column's value, 0 when there is none or it is null
   */
  public double score(RowData row) {
    if (scorePos < 0 || row.isNullAt(scorePos)) {
      return 0d;
    }
    return scoreReader.read(row, scorePos);
  }

  /**
   * Checks that every column can be rendered and that the score column is numeric or temporal.
   *
   * @param rowType physical row type
   * @param scoreField score column or {@code null}
   * @throws ValidationException naming the column otherwise
   */
  public static void validate(RowType rowType, String scoreField) {
    for (RowType.RowField f : rowType.getFields()) {
      formatter(f.getName(), f.getType());
    }
    if (scoreField != null) {
      int pos = rowType.getFieldIndex(scoreField);
      if (pos < 0) {
        throw new ValidationException(
            "'index.score.field' names column '" + scoreField + "', which the table does not have.");
      }
      scoreReader(scoreField, rowType.getTypeAt(pos));
    }
  }

  private static FieldFormatter formatter(String column, LogicalType type) {
    switch (type.getTypeRoot()) {
      case CHAR:
      case VARCHAR:
        return (row, pos) -> row.getString(pos).toString();
      case BOOLEAN:
        return (row, pos) -> Boolean.toString(row.getBoolean(pos));
      case TINYINT:
        return (row, pos) -> Byte.toString(row.getByte(pos));
      case SMALLINT:
        return (row, pos) -> Short.toString(row.getShort(pos));
      case INTEGER:
        return (row, pos) -> Integer.toString(row.getInt(pos));
      case BIGINT:
        return (row, pos) -> Long.toString(row.getLong(pos));
      case FLOAT:
        return (row, pos) -> Float.toString(row.getFloat(pos));
      case DOUBLE:
        return (row, pos) -> Double.toString(row.getDouble(pos));
      case DECIMAL:
        {
          DecimalType dt = (DecimalType) type;
          int p = dt.getPrecision();
          int s = dt.getScale();
          return (row, pos) -> {
            DecimalData d = row.getDecimal(pos, p, s);
            return d.toBigDecimal().toPlainString();
          };
        }
      case DATE:
        return (row, pos) -> LocalDate.ofEpochDay(row.getInt(pos)).toString();
      case TIMESTAMP_WITHOUT_TIME_ZONE:
      case TIMESTAMP_WITH_LOCAL_TIME_ZONE:
        {
          int precision = ConnectorTypes.timestampPrecision(type);
          return (row, pos) -> Long.toString(row.getTimestamp(pos, precision).getMillisecond());
        }
      default:
        throw new ValidationException(
            "Column '"
                + column
                + "' has type "
                + type.asSummaryString()
                + ", which the 'gridlake-redis' connector does not support. Supported: STRING,"
                + " BOOLEAN, TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, DECIMAL, DATE,"
                + " TIMESTAMP, TIMESTAMP_LTZ.");
    }
  }

  private static ScoreReader scoreReader(String column, LogicalType type) {
    if (ConnectorTypes.isTimestamp(type)) {
      int precision = ConnectorTypes.timestampPrecision(type);
      return (row, pos) -> (double) row.getTimestamp(pos, precision).getMillisecond();
    }
    switch (type.getTypeRoot()) {
      case TINYINT:
        return (row, pos) -> row.getByte(pos);
      case SMALLINT:
        return (row, pos) -> row.getShort(pos);
      case INTEGER:
      case DATE:
        return (row, pos) -> row.getInt(pos);
      case BIGINT:
        return (row, pos) -> (double) row.getLong(pos);
      case FLOAT:
        return (row, pos) -> row.getFloat(pos);
      case DOUBLE:
        return (row, pos) -> row.getDouble(pos);
      case DECIMAL:
        {
          DecimalType dt = (DecimalType) type;
          return (row, pos) ->
              row.getDecimal(pos, dt.getPrecision(), dt.getScale()).toBigDecimal().doubleValue();
        }
      default:
        throw new ValidationException(
            "'index.score.field' column '"
                + column
                + "' has type "
                + type.asSummaryString()
                + "; it must be numeric, DATE (epoch days) or TIMESTAMP/TIMESTAMP_LTZ (epoch"
                + " millis).");
    }
  }

  @FunctionalInterface
  private interface FieldFormatter extends Serializable {
    String format(RowData row, int pos);
  }

  @FunctionalInterface
  private interface ScoreReader extends Serializable {
    double read(RowData row, int pos);
  }
}
