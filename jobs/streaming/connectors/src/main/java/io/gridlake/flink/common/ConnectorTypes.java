package io.gridlake.flink.common;

import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.catalog.UniqueConstraint;
import org.apache.flink.table.types.logical.LocalZonedTimestampType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeRoot;
import org.apache.flink.table.types.logical.TimestampType;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/** Planning-time helpers shared by the connectors: option parsing and schema checks. */
public final class ConnectorTypes {

  private ConnectorTypes() {}

  /**
   * Splits a comma separated list of column names.
   *
   * @param value comma list, e.g. {@code "meter_id, ts"}
   * @return the trimmed, non-empty names in order
   */
  public static List<String> splitFields(String value) {
    List<String> out = new ArrayList<>();
    if (value == null) {
      return out;
    }
    for (String part : value.split(",")) {
      String name = part.trim();
      if (!name.isEmpty()) {
        out.add(name);
      }
    }
    return out;
  }

  /**
   * Returns the primary key columns of the table, failing when the DDL has none.
   *
   * @param schema the resolved table schema
   * @param connector connector identifier, for the message
   * @return primary key column names in DDL order
   */
  public static List<String> requirePrimaryKey(ResolvedSchema schema, String connector) {
    return schema
        .getPrimaryKey()
        .map(UniqueConstraint::getColumns)
        .map(ArrayList::new)
        .orElseThrow(
            () ->
                new ValidationException(
                    "Connector '"
                        + connector
                        + "' is an upsert sink and needs a PRIMARY KEY (...) NOT ENFORCED "
                        + "in the table DDL."));
  }

  /**
   * Checks that the DDL's primary key and a configured key list name the same columns.
   *
   * @param primaryKey primary key columns from the DDL
   * @param configured the columns configured in an option
   * @param optionName option name, for the message
   */
  public static void requireSameColumns(
      List<String> primaryKey, List<String> configured, String optionName) {
    Set<String> pk = new LinkedHashSet<>(primaryKey);
    Set<String> cfg = new LinkedHashSet<>(configured);
    if (!pk.equals(cfg) || cfg.size() != configured.size()) {
      throw new ValidationException(
          "The table's PRIMARY KEY "
              + primaryKey
              + " must name exactly the columns of '"
              + optionName
              + "' "
              + configured
              + ".");
    }
  }

  /**
   * Looks a physical column up by name.
   *
   * @param schema resolved schema
   * @param name column name
   * @param optionName option that referenced the column, for the message
   * @return the column
   */
  public static Column requirePhysicalColumn(ResolvedSchema schema, String name, String optionName) {
    return schema
        .getColumn(name)
        .filter(Column::isPhysical)
        .orElseThrow(
            () ->
                new ValidationException(
                    "Option '"
                        + optionName
                        + "' names column '"
                        + name
                        + "', which is not a physical column of the table. Columns: "
                        + physicalNames(schema)
                        + "."));
  }

  /** Physical column names, for error messages. */
  public static List<String> physicalNames(ResolvedSchema schema) {
    List<String> names = new ArrayList<>();
    for (Column c : schema.getColumns()) {
      if (c.isPhysical()) {
        names.add(c.getName());
      }
    }
    return names;
  }

  /**
   * Precision of a TIMESTAMP or TIMESTAMP_LTZ type.
   *
   * @param type a timestamp type
   * @return its fractional-second precision
   */
  public static int timestampPrecision(LogicalType type) {
    if (type instanceof TimestampType) {
      return ((TimestampType) type).getPrecision();
    }
    if (type instanceof LocalZonedTimestampType) {
      return ((LocalZonedTimestampType) type).getPrecision();
    }
    throw new IllegalArgumentException("not a timestamp type: " + type);
  }

  /** Whether the type is TIMESTAMP or TIMESTAMP_LTZ. */
  public static boolean isTimestamp(LogicalType type) {
    return type.is(LogicalTypeRoot.TIMESTAMP_WITHOUT_TIME_ZONE)
        || type.is(LogicalTypeRoot.TIMESTAMP_WITH_LOCAL_TIME_ZONE);
  }

  /** Whether the type root is one of the given roots. */
  public static boolean isOneOf(LogicalType type, LogicalTypeRoot... roots) {
    return Arrays.stream(roots).anyMatch(type::is);
  }
}
