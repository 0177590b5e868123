package io.gridlake.flink.hudi;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.LocalDateTime;
import java.util.List;
import java.util.Map;
import org.apache.avro.LogicalTypes;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericRecord;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.table.api.DataTypes;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.catalog.Column;
import org.apache.flink.table.catalog.ResolvedSchema;
import org.apache.flink.table.catalog.UniqueConstraint;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.RowType;
import org.junit.jupiter.api.Test;

class HudiSpecTest {

  private static ResolvedSchema schema(List<String> pk, Column... columns) {
    return new ResolvedSchema(
        List.of(columns), List.of(), UniqueConstraint.primaryKey("pk", pk), List.of());
  }

  private static RowType rowType(ResolvedSchema s) {
    return (RowType) s.toPhysicalRowDataType().getLogicalType();
  }

  private static Configuration options(String keys, String ordering, String partition) {
    Configuration c = new Configuration();
    c.setString("path", "file:///tmp/x");
    c.setString("table.name", "ods_meter");
    c.setString("record.key.fields", keys);
    c.setString("ordering.field", ordering);
    if (partition != null) {
      c.setString("partition.path.field", partition);
    }
    return c;
  }

  private static final DataType TS3 = DataTypes.TIMESTAMP(3).notNull();

  private static ResolvedSchema meterSchema() {
    return schema(
        List.of("meter_id", "ts"),
        Column.physical("meter_id", DataTypes.STRING().notNull()),
        Column.physical("ts", TS3),
        Column.physical("kwh", DataTypes.DOUBLE()),
        Column.physical("ok", DataTypes.BOOLEAN()),
        Column.physical("n", DataTypes.INT()),
        Column.physical("seq", DataTypes.BIGINT()),
        Column.physical("f", DataTypes.FLOAT()),
        Column.physical("d", DataTypes.DATE()),
        Column.physical("ltz", DataTypes.TIMESTAMP_LTZ(3)),
        Column.physical("dt", DataTypes.STRING()));
  }

  @Test
  void buildsSpecAndAvroSchema() {
    ResolvedSchema s = meterSchema();
    HudiSinkSpec spec =
        HudiDynamicTableFactory.buildSpec(
            options("meter_id, ts", "ts", "dt"), s, rowType(s), Map.of("hoodie.x", "1"));
    assertEquals(List.of("meter_id", "ts"), spec.recordKeyFields());
    assertEquals("COMPLEX", spec.keyGeneratorType());
    Schema avro = new Schema.Parser().parse(spec.avroSchemaJson());
    assertEquals("ods_meter_record", avro.getName());
    assertEquals("hoodie.ods_meter", avro.getNamespace());
    assertEquals(Schema.Type.STRING, avro.getField("meter_id").schema().getType());
    assertEquals("timestamp-micros", avro.getField("ts").schema().getLogicalType().getName());
    Schema kwh = avro.getField("kwh").schema();
    assertEquals(Schema.Type.UNION, kwh.getType());
    assertEquals(Schema.Type.NULL, kwh.getTypes().get(0).getType());
    assertEquals(Schema.Type.DOUBLE, kwh.getTypes().get(1).getType());
    assertEquals("date", avro.getField("d").schema().getTypes().get(1).getLogicalType().getName());
    assertEquals(
        "timestamp-micros",
        avro.getField("ltz").schema().getTypes().get(1).getLogicalType().getName());
  }

  @Test
  void convertsRows() {
    ResolvedSchema s = meterSchema();
    HudiSinkSpec spec =
        HudiDynamicTableFactory.buildSpec(options("meter_id,ts", "ts", "dt"), s, rowType(s), Map.of());
    AvroRowConverter conv =
        new AvroRowConverter(spec.rowType(), spec.avroSchemaJson(), spec.recordKeyFields());
    LocalDateTime t = LocalDateTime.of(2024, 1, 1, 0, 15);
    GenericRowData row =
        GenericRowData.of(
            StringData.fromString("m1"),
            TimestampData.fromLocalDateTime(t),
            1.5d,
            true,
            7,
            8L,
            2.5f,
            19723,
            null,
            StringData.fromString("2024-01-01"));
    GenericRecord rec = conv.convert(row);
    assertEquals("m1", rec.get("meter_id"));
    // epoch microseconds, as Spark stores TimestampType (one record key for both engines)
    assertEquals(1704068100000000L, rec.get("ts"));
    assertEquals(1.5d, rec.get("kwh"));
    assertEquals(19723, rec.get("d"));
    assertNull(rec.get("ltz"));
    assertEquals("2024-01-01", rec.get("dt"));
  }

  @Test
  void findsTimestampMillisColumnsOfOlderTables() {
    Schema millis = LogicalTypes.timestampMillis().addToSchema(Schema.create(Schema.Type.LONG));
    Schema micros = LogicalTypes.timestampMicros().addToSchema(Schema.create(Schema.Type.LONG));
    Schema nullableMillis = Schema.createUnion(Schema.create(Schema.Type.NULL), millis);
    Schema old =
        Schema.createRecord(
            "r",
            null,
            "hoodie.r",
            false,
            List.of(
                new Schema.Field("ts", millis),
                new Schema.Field("updated_ts", nullableMillis),
                new Schema.Field("at", micros),
                new Schema.Field("n", Schema.create(Schema.Type.LONG))));
    assertEquals(List.of("ts", "updated_ts"), HudiTableWriter.timestampMillisFields(old));
  }

  @Test
  void rejectsMismatchedPrimaryKey() {
    ResolvedSchema s = meterSchema();
    ValidationException e =
        assertThrows(
            ValidationException.class,
            () -> HudiDynamicTableFactory.buildSpec(options("meter_id", "ts", "dt"), s, rowType(s), Map.of()));
    assertTrue(e.getMessage().contains("PRIMARY KEY"), e.getMessage());
  }

  @Test
  void mergeOnReadRejectsSmallFilePacking() {
    ResolvedSchema s = meterSchema();
    Configuration mor = options("meter_id,ts", "ts", "dt");
    mor.setString("table.type", "MERGE_ON_READ");
    Map<String, String> packing = Map.of("hoodie.parquet.small.file.limit", "104857600");
    ValidationException e =
        assertThrows(
            ValidationException.class,
            () -> HudiDynamicTableFactory.buildSpec(mor, s, rowType(s), packing));
    assertTrue(e.getMessage().contains("hoodie.parquet.small.file.limit"), e.getMessage());
    // the same option is the DDL's to choose on a COPY_ON_WRITE table, and 0 is accepted
    HudiDynamicTableFactory.buildSpec(options("meter_id,ts", "ts", "dt"), s, rowType(s), packing);
    HudiDynamicTableFactory.buildSpec(
        mor, s, rowType(s), Map.of("hoodie.parquet.small.file.limit", "0"));
  }

  @Test
  void rejectsUnsupportedTypeNamingColumn() {
    ResolvedSchema s =
        schema(
            List.of("id"),
            Column.physical("id", DataTypes.STRING().notNull()),
            Column.physical("ts", TS3),
            Column.physical("amount", DataTypes.DECIMAL(10, 2)));
    ValidationException e =
        assertThrows(
            ValidationException.class,
            () -> HudiDynamicTableFactory.buildSpec(options("id", "ts", null), s, rowType(s), Map.of()));
    assertTrue(e.getMessage().contains("'amount'"), e.getMessage());
    ResolvedSchema s6 =
        schema(
            List.of("id"),
            Column.physical("id", DataTypes.STRING().notNull()),
            Column.physical("ts", DataTypes.TIMESTAMP(6).notNull()));
    e =
        assertThrows(
            ValidationException.class,
            () -> HudiDynamicTableFactory.buildSpec(options("id", "ts", null), s6, rowType(s6), Map.of()));
    assertTrue(e.getMessage().contains("'ts'") && e.getMessage().contains("TIMESTAMP(3)"));
  }

  @Test
  void tableTypesStringOrderingAndOwnedOptions() {
    ResolvedSchema s = meterSchema();
    Configuration mor = options("meter_id,ts", "ts", "dt");
    mor.setString("table.type", "merge_on_read");
    assertTrue(HudiDynamicTableFactory.buildSpec(mor, s, rowType(s), Map.of()).isMergeOnRead());
    Configuration bad = options("meter_id,ts", "ts", "dt");
    bad.setString("table.type", "BOTH");
    assertThrows(
        ValidationException.class,
        () -> HudiDynamicTableFactory.buildSpec(bad, s, rowType(s), Map.of()));
    assertThrows(
        ValidationException.class,
        () -> HudiDynamicTableFactory.buildSpec(options("meter_id,ts", "dt", "dt"), s, rowType(s), Map.of()));
    assertThrows(
        ValidationException.class,
        () ->
            HudiDynamicTableFactory.buildSpec(
                options("meter_id,ts", "ts", "dt"),
                s,
                rowType(s),
                Map.of("hoodie.table.ordering.fields", "x")));
    assertThrows(
        ValidationException.class,
        () -> HudiDynamicTableFactory.buildSpec(options("meter_id,ts", "ts", "n"), s, rowType(s), Map.of()));
  }

  @Test
  void keyGeneratorFollowsKeysAndPartitioning() {
    ResolvedSchema s = meterSchema();
    ResolvedSchema single =
        schema(
            List.of("meter_id"),
            Column.physical("meter_id", DataTypes.STRING().notNull()),
            Column.physical("ts", TS3),
            Column.physical("dt", DataTypes.STRING()));
    assertEquals(
        "SIMPLE",
        HudiDynamicTableFactory.buildSpec(options("meter_id", "ts", "dt"), single, rowType(single), Map.of())
            .keyGeneratorType());
    assertEquals(
        "NON_PARTITION",
        HudiDynamicTableFactory.buildSpec(options("meter_id,ts", "ts", null), s, rowType(s), Map.of())
            .keyGeneratorType());
  }

  @Test
  void stampFieldMustBeAValueTimestampColumn() {
    ResolvedSchema s = meterSchema();
    Configuration ok = options("meter_id,ts", "ltz", "dt");
    ok.setString("stamp.field", "ltz");
    assertEquals("ltz", HudiDynamicTableFactory.buildSpec(ok, s, rowType(s), Map.of()).stampField());
    assertNull(
        HudiDynamicTableFactory.buildSpec(options("meter_id,ts", "ltz", "dt"), s, rowType(s), Map.of())
            .stampField());
    for (String bad : List.of("ts", "dt", "kwh", "nope")) { // key, partition, not a timestamp, absent
      Configuration c = options("meter_id,ts", "ltz", "dt");
      c.setString("stamp.field", bad);
      assertThrows(
          ValidationException.class,
          () -> HudiDynamicTableFactory.buildSpec(c, s, rowType(s), Map.of()),
          bad);
    }
  }
}
