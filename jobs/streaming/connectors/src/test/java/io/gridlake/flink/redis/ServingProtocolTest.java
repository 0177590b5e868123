package io.gridlake.flink.redis;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Random;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.data.TimestampData;
import org.apache.flink.table.types.logical.BigIntType;
import org.apache.flink.table.types.logical.BooleanType;
import org.apache.flink.table.types.logical.DoubleType;
import org.apache.flink.table.types.logical.IntType;
import org.apache.flink.table.types.logical.LocalZonedTimestampType;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.RowType;
import org.apache.flink.table.types.logical.VarCharType;
import org.junit.jupiter.api.Test;

/**
 * The connector's side of the protocol of {@code infra/serving_store.py}: the shared test vector
 * ({@code serving-vectors.json}, also checked by {@code tests/infra/test_serving_store.py}), the
 * shared scripts, and the buffer's merge of two changes of a key.
 */
class ServingProtocolTest {

  private static JsonNode vectors() throws IOException {
    try (InputStream in = ServingProtocolTest.class.getResourceAsStream("serving-vectors.json")) {
      return new ObjectMapper().readTree(in);
    }
  }

  /** The Flink type the streaming job's DDL gives a contract type (jobs/common/ddl.py). */
  private static LogicalType flinkType(String contractType) {
    switch (contractType) {
      case "string":
        return VarCharType.STRING_TYPE;
      case "int":
        return new IntType();
      case "bigint":
        return new BigIntType();
      case "double":
        return new DoubleType();
      case "boolean":
        return new BooleanType();
      case "timestamp":
        return new LocalZonedTimestampType(3);
      default:
        throw new IllegalArgumentException(contractType);
    }
  }

  private static RowType rowType(JsonNode table) {
    List<RowType.RowField> fields = new ArrayList<>();
    for (JsonNode c : table.get("columns")) {
      fields.add(new RowType.RowField(c.get("name").asText(), flinkType(c.get("type").asText())));
    }
    return new RowType(fields);
  }

  private static Object value(String contractType, JsonNode v) {
    if (v == null || v.isNull()) {
      return null;
    }
    switch (contractType) {
      case "string":
        return StringData.fromString(v.asText());
      case "int":
        return v.asInt();
      case "bigint":
        return v.asLong();
      case "double":
        return v.asDouble();
      case "boolean":
        return v.asBoolean();
      case "timestamp":
        return TimestampData.fromEpochMillis(v.asLong());
      default:
        throw new IllegalArgumentException(contractType);
    }
  }

  private static RowData row(JsonNode table, JsonNode values) {
    JsonNode columns = table.get("columns");
    GenericRowData row = new GenericRowData(columns.size());
    for (int i = 0; i < columns.size(); i++) {
      JsonNode c = columns.get(i);
      row.setField(i, value(c.get("type").asText(), values.get(c.get("name").asText())));
    }
    return row;
  }

  private static ServingProtocol protocol(JsonNode table) {
    List<String> key = new ArrayList<>();
    table.get("record_key").forEach(k -> key.add(k.asText()));
    return new ServingProtocol(
        rowType(table),
        key,
        table.get("score_field").asText(),
        table.get("ordering_field").asText());
  }

  private static List<String> strings(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(v -> out.add(v.asText()));
    return out;
  }

  private static String tablePrefix(JsonNode vectors, String name, JsonNode table) {
    String layer = table.get("layer").asText();
    return vectors.get("key_prefix").asText()
        + layer
        + ":"
        + name.substring(layer.length() + 1)
        + ":";
  }

  @Test
  void upsertsFollowTheSharedVector() throws IOException {
    JsonNode v = vectors();
    int n = 0;
    for (JsonNode c : v.get("upserts")) {
      String name = c.get("table").asText();
      JsonNode table = v.get("tables").get(name);
      ServingProtocol p = protocol(table);
      RowData r = row(table, c.get("row"));
      String what = c.get("case").asText();
      assertEquals(strings(c.get("argv")), p.upsertArgs(r), what);
      assertEquals(
          strings(c.get("keys")),
          ServingProtocol.keys(tablePrefix(v, name, table), p.member(r)),
          what);
      n++;
    }
    assertTrue(n >= 10, "the vector has its cases");
  }

  @Test
  void deletesFollowTheSharedVector() throws IOException {
    JsonNode v = vectors();
    for (JsonNode c : v.get("deletes")) {
      String name = c.get("table").asText();
      JsonNode table = v.get("tables").get(name);
      String member = c.get("member").asText();
      String what = c.get("case").asText();
      assertEquals(
          strings(c.get("argv")),
          protocol(table).deleteArgs(member, c.get("version").asText()),
          what);
      assertEquals(
          strings(c.get("keys")), ServingProtocol.keys(tablePrefix(v, name, table), member), what);
    }
  }

  @Test
  void withoutAnOrderingFieldEveryChangeApplies() throws IOException {
    JsonNode v = vectors();
    JsonNode table = v.get("tables").get("ads_vector_seq");
    ServingProtocol p = new ServingProtocol(rowType(table), List.of("id"), "v", null);
    JsonNode c = v.get("upserts").get(5);
    List<String> args = p.upsertArgs(row(table, c.get("row")));
    assertEquals(List.of("", ""), args.subList(2, 4));
    assertEquals(List.of("a", "", ""), p.deleteArgs("a", "6"));
  }

  @Test
  void theScriptsAreTheSharedFiles() throws IOException {
    // the jar's resources are infra/serving_lua's files, byte for byte (pom.xml <resources>)
    Path lua = Paths.get(System.getProperty("user.dir"), "..", "..", "..", "infra", "serving_lua");
    assertEquals(
        Files.readString(lua.resolve("upsert.lua"), StandardCharsets.UTF_8),
        ServingProtocol.UPSERT_SCRIPT);
    assertEquals(
        Files.readString(lua.resolve("delete.lua"), StandardCharsets.UTF_8),
        ServingProtocol.DELETE_SCRIPT);
    assertTrue(ServingProtocol.UPSERT_SCRIPT.contains("redis.call('HSET'"));
    assertEquals(40, ServingProtocol.UPSERT_SHA.length());
    assertFalse(ServingProtocol.UPSERT_SHA.equals(ServingProtocol.DELETE_SHA));
  }

  @Test
  void scoresRenderAsThePythonWriters() {
    assertEquals("1704067200000", ServingProtocol.scoreArg(1704067200000d));
    assertEquals("0", ServingProtocol.scoreArg(-0.0));
    assertEquals("2.5", ServingProtocol.scoreArg(2.5));
    assertEquals("1.0E20", ServingProtocol.scoreArg(1e20));
    assertEquals("9.007199254740992E15", ServingProtocol.scoreArg(0x1p53));
  }

  // ----------------------------------------------------------------- the buffer's merge rule
  /** A stored hash: which change wrote it, and its ordering value (NaN: none). */
  private static final class Stored {
    final int writer;
    final double order;

    Stored(int writer, double order) {
      this.writer = writer;
      this.order = order;
    }

    @Override
    public boolean equals(Object o) {
      return o instanceof Stored
          && ((Stored) o).writer == writer
          && Double.compare(((Stored) o).order, order) == 0;
    }

    @Override
    public int hashCode() {
      return writer;
    }

    @Override
    public String toString() {
      return "#" + writer + "@" + order;
    }
  }

  /** What the scripts do to one key (null: no hash); a call's only argument is its number. */
  private static Stored apply(Stored s, RedisSinkWriter.Call c) {
    if (s != null && !Double.isNaN(s.order) && !Double.isNaN(c.order) && s.order > c.order) {
      return s; // refused: the stored hash is newer
    }
    return c.delete ? null : new Stored(Integer.parseInt(c.args.get(0)), c.order);
  }

  @Test
  void theBufferedChangesHaveTheEffectOfAllTheChangesOnEveryHash() {
    Random rnd = new Random(11);
    double[] orders = {Double.NaN, 1, 2, 3};
    int flushes = 0;
    for (int trial = 0; trial < 20_000; trial++) {
      int n = 1 + rnd.nextInt(5);
      List<RedisSinkWriter.Call> calls = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        calls.add(
            new RedisSinkWriter.Call(
                rnd.nextBoolean(), List.of(Integer.toString(i)), orders[rnd.nextInt(4)]));
      }
      // what the writer sends for the key: changes it had to flush, then the buffered one
      List<RedisSinkWriter.Call> sent = new ArrayList<>();
      RedisSinkWriter.Call buffered = calls.get(0);
      for (RedisSinkWriter.Call c : calls.subList(1, n)) {
        RedisSinkWriter.Call merged = RedisSinkWriter.merge(buffered, c);
        if (merged == null) {
          sent.add(buffered);
          merged = c;
        }
        buffered = merged;
      }
      sent.add(buffered);
      flushes += sent.size() - 1;
      List<Stored> states = new ArrayList<>();
      states.add(null);
      for (double o : orders) {
        states.add(new Stored(-1, o));
      }
      for (Stored start : states) {
        Stored sequential = start;
        for (RedisSinkWriter.Call c : calls) {
          sequential = apply(sequential, c);
        }
        Stored written = start;
        for (RedisSinkWriter.Call c : sent) {
          written = apply(written, c);
        }
        assertEquals(sequential, written, "changes " + describe(calls) + " on " + start);
      }
    }
    // most changes merge: a flush is only for an older insert after a delete, or after a change
    // without an ordering value
    assertTrue(flushes > 0 && flushes < 20_000, "flushes: " + flushes);
  }

  @Test
  void changesWithOrderingValuesMergeWithoutFlushing() {
    RedisSinkWriter.Call up1 = new RedisSinkWriter.Call(false, List.of("1"), 1);
    RedisSinkWriter.Call up2 = new RedisSinkWriter.Call(false, List.of("2"), 2);
    RedisSinkWriter.Call del2 = new RedisSinkWriter.Call(true, List.of("3"), 2);
    assertSame(up2, RedisSinkWriter.merge(up1, up2)); // newer wins
    assertSame(up2, RedisSinkWriter.merge(up2, up1)); // an older one is dropped
    assertSame(del2, RedisSinkWriter.merge(up2, del2)); // ties go to the later
    assertNull(RedisSinkWriter.merge(del2, up1)); // re-insert after a newer delete
  }

  private static String describe(List<RedisSinkWriter.Call> calls) {
    StringBuilder sb = new StringBuilder();
    for (Iterator<RedisSinkWriter.Call> it = calls.iterator(); it.hasNext(); ) {
      RedisSinkWriter.Call c = it.next();
      sb.append(c.delete ? "del@" : "up@").append(c.order).append(it.hasNext() ? ", " : "");
    }
    return sb.toString();
  }
}
