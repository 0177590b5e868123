package io.gridlake.flink.common;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.atomic.AtomicLong;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.LocalZonedTimestampType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.VarCharType;
import org.apache.flink.types.RowKind;
import org.junit.jupiter.api.Test;

class RowStamperTest {

  private static final RowType TYPE =
      RowType.of(
          new org.apache.flink.table.types.logical.LogicalType[] {
            new VarCharType(VarCharType.MAX_LENGTH), new BigIntType(), new LocalZonedTimestampType(3)
          },
          new String[] {"id", "n", "updated_ts"});

  private static RowData row(RowKind kind, String id, long n, long stampMs) {
    GenericRowData r =
        GenericRowData.ofKind(
            kind, StringData.fromString(id), n, TimestampData.fromEpochMillis(stampMs));
    return r;
  }

  @Test
  void replacesTheStampColumnWithTheWriteTimeAndKeepsTheRest() {
    AtomicLong clock = new AtomicLong(5_000);
    RowStamper s = new RowStamper(TYPE, "updated_ts", clock::get);
    RowData out = s.stamp(row(RowKind.UPDATE_AFTER, "m-1", 7, 0));
    assertEquals(RowKind.UPDATE_AFTER, out.getRowKind());
    assertEquals("m-1", out.getString(0).toString());
    assertEquals(7L, out.getLong(1));
    assertEquals(5_000L, out.getTimestamp(2, 3).getMillisecond());
  }

  @Test
  void stampsNeverDecreaseWhenTheClockStepsBack() {
    AtomicLong clock = new AtomicLong(10_000);
    RowStamper s = new RowStamper(TYPE, "updated_ts", clock::get);
    assertEquals(10_000L, s.stamp(row(RowKind.INSERT, "a", 1, 0)).getTimestamp(2, 3).getMillisecond());
    clock.set(9_000); // wall clock stepped back
    assertEquals(10_000L, s.stamp(row(RowKind.INSERT, "a", 2, 0)).getTimestamp(2, 3).getMillisecond());
    clock.set(12_000);
    assertEquals(12_000L, s.stamp(row(RowKind.INSERT, "a", 3, 0)).getTimestamp(2, 3).getMillisecond());
  }

  @Test
  void withoutAFieldRowsPassThrough() {
    RowStamper s = new RowStamper(TYPE, null);
    RowData in = row(RowKind.INSERT, "a", 1, 42);
    assertSame(in, s.stamp(in));
  }

  @Test
  void unknownFieldIsRefused() {
    assertThrows(IllegalArgumentException.class, () -> new RowStamper(TYPE, "nope"));
  }
}
