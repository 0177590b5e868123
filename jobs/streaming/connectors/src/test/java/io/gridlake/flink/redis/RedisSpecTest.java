package io.gridlake.flink.redis;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.math.BigDecimal;
import java.time.LocalDateTime;
import java.util.List;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.catalog.UniqueConstraint;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.types.logical.RowType;
import org.junit.jupiter.api.Test;

class RedisSpecTest {

  private static ResolvedSchema schema() {
    return new ResolvedSchema(
        List.of(
            Column.physical("meter_id", DataTypes.STRING().notNull()),
            Column.physical("window_end", DataTypes.TIMESTAMP(3).notNull()),
            Column.physical("kwh", DataTypes.DECIMAL(12, 3)),
            Column.physical("d", DataTypes.DATE()),
            Column.physical("note", DataTypes.STRING())),
        List.of(),
        UniqueConstraint.primaryKey("pk", List.of("meter_id", "window_end")),
        List.of());
  }

  private static Configuration options(String score) {
    Configuration c = new Configuration();
    c.setString("url", "redis://127.0.0.1:6379/0");
    c.setString("key.prefix", "gridlake:ads:x:");
    if (score != null) {
      c.setString("index.score.field", score);
    }
    return c;
  }

  @Test
  void rendersKeysValuesAndScores() {
    ResolvedSchema s = schema();
    RowType rt = (RowType) s.toPhysicalRowDataType().getLogicalType();
    RedisSinkSpec spec = RedisDynamicTableFactory.buildSpec(options("window_end"), s, rt);
    assertEquals("gridlake:ads:x:index", spec.indexKey());
    assertEquals("gridlake:ads:x:events", spec.eventsChannel());
    RedisRowConverter c = new RedisRowConverter(rt, spec.keyFields(), spec.scoreField());
    GenericRowData row =
        GenericRowData.of(
            StringData.fromString("m1"),
            TimestampData.fromLocalDateTime(LocalDateTime.of(2024, 1, 1, 0, 15)),
            DecimalData.fromBigDecimal(new BigDecimal("1.250"), 12, 3),
            19723,
            null);
    assertEquals("m1|1704068100000", c.keySuffix(row));
    assertEquals("1.250", c.value(row, 2));
    assertEquals("2024-01-01", c.value(row, 3));
    assertNull(c.value(row, 4));
    assertEquals(1704068100000d, c.score(row));
  }

  @Test
  void orderingFieldIsANumericOrTimestampColumn() {
    ResolvedSchema s = schema();
    RowType rt = (RowType) s.toPhysicalRowDataType().getLogicalType();
    assertNull(RedisDynamicTableFactory.buildSpec(options("window_end"), s, rt).orderingField());
    Configuration ordered = options("window_end");
    ordered.setString("ordering.field", "kwh");
    assertEquals("kwh", RedisDynamicTableFactory.buildSpec(ordered, s, rt).orderingField());
    for (String bad : new String[] {"note", "d", "missing"}) {
      Configuration c = options("window_end");
      c.setString("ordering.field", bad);
      assertThrows(
          ValidationException.class, () -> RedisDynamicTableFactory.buildSpec(c, s, rt), bad);
    }
  }

  @Test
  void rejectsBadOptions() {
    ResolvedSchema s = schema();
    RowType rt = (RowType) s.toPhysicalRowDataType().getLogicalType();
    assertThrows(
        ValidationException.class, () -> RedisDynamicTableFactory.buildSpec(options("note"), s, rt));
    Configuration bad = options(null);
    bad.setString("url", "http://x");
    assertThrows(ValidationException.class, () -> RedisDynamicTableFactory.buildSpec(bad, s, rt));
  }
}
